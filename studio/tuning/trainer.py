"""Build TRL's SFTTrainer for a TuneConfig: the LoRA config, the training arguments, the data.

Owns the device-dependent choices, so they are right by construction rather than settings a user
can get wrong: on a GPU, bf16 compute where the GPU supports it (fp16 otherwise) and the paged
8-bit AdamW that keeps optimizer state from spiking memory; on CPU, fp32 and plain AdamW (the
fused variant is CUDA-only). A quantized base goes through PEFT's k-bit preparation (norms in
fp32, input gradients enabled) before the adapter is attached.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.tuning.config import LoraSettings, TuneConfig

if TYPE_CHECKING:
    from studio.models.device import DevicePlan
    from studio.models.loading import LoadedModel
    from studio.tuning.data import PreparedData, TrainExample

# Roughly how many eval-loss points a run gets when eval_steps is not set.
EVALS_PER_RUN = 10


def lora_config(settings: LoraSettings) -> Any:
    from peft import LoraConfig  # lazy: peft pulls in torch and transformers

    return LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        use_rslora=settings.use_rslora,
        use_dora=settings.use_dora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def total_steps(config: TuneConfig, n_train: int, world_size: int = 1) -> int:
    """Optimizer steps the run will take (what the progress bar and ETA count towards)."""
    training = config.training
    if training.max_steps is not None:
        return training.max_steps
    per_update = training.batch_size * training.grad_accumulation * world_size
    return max(1, math.ceil(math.ceil(n_train / per_update) * training.epochs))


def precision_choices(plan: DevicePlan) -> dict[str, Any]:
    """Mixed precision and optimizer for the device the model is on."""
    if plan.is_cuda:
        return {
            "bf16": plan.bf16,
            "fp16": not plan.bf16,
            "optim": "paged_adamw_8bit",
            "use_cpu": False,
        }
    return {"bf16": False, "fp16": False, "optim": "adamw_torch", "use_cpu": True}


def training_arguments(
    config: TuneConfig, plan: DevicePlan, output_dir: Path, n_train: int, has_eval: bool
) -> Any:
    from trl import SFTConfig  # lazy: trl pulls in torch, transformers and datasets

    training = config.training
    steps = total_steps(config, n_train)
    eval_every = training.eval_steps or max(1, steps // EVALS_PER_RUN)
    return SFTConfig(
        output_dir=str(output_dir),
        learning_rate=training.learning_rate,
        lr_scheduler_type=training.scheduler,
        warmup_steps=math.ceil(training.warmup_ratio * steps),
        num_train_epochs=training.epochs,
        max_steps=training.max_steps or -1,
        per_device_train_batch_size=training.batch_size,
        per_device_eval_batch_size=training.batch_size,
        gradient_accumulation_steps=training.grad_accumulation,
        gradient_checkpointing=training.gradient_checkpointing,
        weight_decay=training.weight_decay,
        max_grad_norm=training.max_grad_norm,
        seed=training.seed,
        data_seed=training.seed,
        logging_steps=training.logging_steps,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_every if has_eval else None,
        save_strategy="steps",
        save_steps=training.save_steps,
        save_total_limit=2,
        # Rows arrive already truncated to max_length (studio.tuning.data); TRL refuses a
        # max_length with padding-free batching, which it cannot enforce there.
        max_length=None if training.padding_free else config.data.max_length,
        packing=training.packing,
        padding_free=training.padding_free,
        completion_only_loss=config.data.completion_only_loss,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **precision_choices(plan),
    )


def to_dataset(examples: list[TrainExample]) -> Any:
    """Pre-tokenized rows: TRL then trains on exactly these tokens and masks."""
    # lazy: datasets (Hugging Face) is slow to import; only training needs it
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "input_ids": [example.input_ids for example in examples],
            "completion_mask": [example.completion_mask for example in examples],
        }
    )


def attach_adapter(loaded: LoadedModel, config: TuneConfig) -> Any:
    """The base model with a fresh, trainable LoRA adapter (base weights frozen)."""
    # lazy: peft pulls in torch and transformers
    from peft import get_peft_model, prepare_model_for_kbit_training
    from transformers import set_seed

    model = loaded.model
    if config.model.quantization != "none":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.training.gradient_checkpointing
        )
    model.train()
    set_seed(config.training.seed)  # the run's seed fixes the LoRA init (lora_A is random)
    return get_peft_model(model, lora_config(config.lora))


def build_trainer(
    config: TuneConfig,
    loaded: LoadedModel,
    prepared: PreparedData,
    output_dir: Path,
    callbacks: list[Any],
) -> Any:
    from trl import SFTTrainer  # lazy: trl pulls in torch, transformers and datasets

    args = training_arguments(
        config, loaded.plan, output_dir, len(prepared.train), has_eval=bool(prepared.eval)
    )
    return SFTTrainer(
        model=attach_adapter(loaded, config),
        args=args,
        train_dataset=to_dataset(prepared.train),
        eval_dataset=to_dataset(prepared.eval) if prepared.eval else None,
        processing_class=loaded.tokenizer,
        callbacks=callbacks,
    )


def latest_checkpoint(output_dir: Path) -> Path | None:
    """The newest complete `checkpoint-N` folder the Trainer left in output_dir (for resume).

    The Trainer writes a checkpoint in place and its trainer_state.json last, so a process killed
    mid-save leaves a folder without a readable one: that folder is passed over for the one before.
    """
    found = [
        (int(path.name.split("-")[1]), path)
        for path in output_dir.glob("checkpoint-*")
        if path.is_dir() and path.name.split("-")[1].isdigit() and _complete(path)
    ]
    return max(found)[1] if found else None


def _complete(checkpoint: Path) -> bool:
    try:
        state = json.loads((checkpoint / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(state, dict) and "global_step" in state
