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
import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.tuning.config import LoraSettings, TuneConfig
from studio.tuning.loss import add_answer_only_head, use_answer_only_head

if TYPE_CHECKING:
    from studio.models.device import DevicePlan
    from studio.models.loading import LoadedModel
    from studio.tuning.data import PreparedData, TrainExample

# Roughly how many eval-loss points a run gets when eval_steps is not set.
EVALS_PER_RUN = 10
# The share of a run's compute its evaluations may take by default (eval_rows not set).
EVAL_SHARE = 0.10
# What an evaluated token costs against a trained one: a forward pass against forward and
# backward, about 3 forwards (issue 16's CPU run: eleven evaluations of 100 rows cost 40% on top
# of 900 trained rows, 0.33 a row).
EVAL_TOKEN_COST = 1 / 3
# An evaluation reads at least this many rows (fewer make its loss too noisy to follow).
MIN_EVAL_ROWS = 16


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


@dataclass(frozen=True)
class EvalPlan:
    """What a run's evaluations read and cost: the schedule the Trainer and the worker follow.

    Every evaluation (each periodic one and the worker's final one) reads the same seeded subset
    of the eval split, so the points of the curve compare like with like."""

    every: int | None  # eval_steps; None: only the final evaluation
    evaluations: int
    rows: tuple[int, ...]  # indices into the eval split
    held: int  # rows in the eval split
    eval_tokens: int  # tokens one evaluation reads
    train_tokens: int  # tokens the run trains on (the mean row times rows seen)
    chosen: bool  # eval_rows set by the user

    @property
    def share(self) -> float:
        """Evaluation's share of the run's compute (an evaluated token costs EVAL_TOKEN_COST)."""
        evaluated = self.evaluations * self.eval_tokens * EVAL_TOKEN_COST
        return evaluated / max(self.train_tokens + evaluated, 1e-9)

    def describe(self) -> str:
        how = (
            f"eval_rows {len(self.rows)} as set"
            if self.chosen
            else f"rows capped to keep it near {EVAL_SHARE:.0%}; set eval_rows to read more"
        )
        return (
            f"{self.evaluations} evaluations × {len(self.rows)} of {self.held} eval rows "
            f"({self.eval_tokens:,} tokens each) ≈ {self.share:.1%} of the run's compute ({how})"
        )


def eval_plan(
    config: TuneConfig, train: list[TrainExample], evaluation: list[TrainExample]
) -> EvalPlan | None:
    """The evaluation schedule of a run (None without eval rows); see EvalPlan."""
    if not evaluation or not train:
        return None
    training = config.training
    steps = total_steps(config, len(train))
    every = training.eval_steps or max(1, steps // EVALS_PER_RUN)
    evaluations = steps // every + 1  # the Trainer's, then the worker's final one
    seen = steps * training.batch_size * training.grad_accumulation
    train_tokens = round(seen * sum(e.n_tokens for e in train) / len(train))
    order = list(range(len(evaluation)))
    random.Random(training.seed).shuffle(order)
    if training.eval_rows is not None:
        rows = order[: training.eval_rows]
    else:
        # Total evaluated tokens that make evaluation EVAL_SHARE of the run, split per evaluation.
        budget = EVAL_SHARE / (1 - EVAL_SHARE) * train_tokens / EVAL_TOKEN_COST / evaluations
        rows = _within(order, [e.n_tokens for e in evaluation], budget)
    return EvalPlan(
        every=every if every <= steps else None,
        evaluations=evaluations,
        rows=tuple(sorted(rows)),
        held=len(evaluation),
        eval_tokens=sum(evaluation[i].n_tokens for i in rows),
        train_tokens=train_tokens,
        chosen=training.eval_rows is not None,
    )


def evaluation_summary(
    config: TuneConfig, train: list[TrainExample], evaluation: list[TrainExample]
) -> str:
    """The pre-launch report's line on evaluation (the UI's Check and `studio tune --check`)."""
    plan = eval_plan(config, train, evaluation)
    return plan.describe() if plan is not None else "none (no eval rows)"


def _within(order: list[int], lengths: list[int], budget: float) -> list[int]:
    """The first rows of `order` whose tokens fit the budget (at least MIN_EVAL_ROWS)."""
    rows: list[int] = []
    tokens = 0
    for index in order:
        if len(rows) >= MIN_EVAL_ROWS and tokens + lengths[index] > budget:
            break
        rows.append(index)
        tokens += lengths[index]
    return rows


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


def schedule_arguments(config: TuneConfig, output_dir: Path, steps: int) -> dict[str, Any]:
    """The TrainingArguments every method shares: optimisation schedule, batches, seeds,
    logging and checkpoints (SFT here, DPO/ORPO/KTO in studio.tuning.preference)."""
    training = config.training
    return {
        "output_dir": str(output_dir),
        "learning_rate": training.learning_rate,
        "lr_scheduler_type": training.scheduler,
        "warmup_steps": math.ceil(training.warmup_ratio * steps),
        "num_train_epochs": training.epochs,
        "max_steps": training.max_steps or -1,
        "per_device_train_batch_size": training.batch_size,
        "per_device_eval_batch_size": training.batch_size,
        "gradient_accumulation_steps": training.grad_accumulation,
        "gradient_checkpointing": training.gradient_checkpointing,
        "weight_decay": training.weight_decay,
        "max_grad_norm": training.max_grad_norm,
        "seed": training.seed,
        "data_seed": training.seed,
        "logging_steps": training.logging_steps,
        "save_strategy": "steps",
        "save_steps": training.save_steps,
        "save_total_limit": 2,
    }


def training_arguments(
    config: TuneConfig, plan: DevicePlan, output_dir: Path, n_train: int, evals: EvalPlan | None
) -> Any:
    from trl import SFTConfig  # lazy: trl pulls in torch, transformers and datasets

    training = config.training
    steps = total_steps(config, n_train)
    periodic = evals is not None and evals.every is not None
    return SFTConfig(
        **schedule_arguments(config, output_dir, steps),
        eval_strategy="steps" if periodic else "no",
        eval_steps=evals.every if evals is not None and periodic else None,
        # Rows arrive already truncated to max_length (studio.tuning.data); TRL refuses a
        # max_length with padding-free batching, which it cannot enforce there.
        max_length=None if training.padding_free else config.data.max_length,
        packing=training.packing,
        padding_free=training.padding_free,
        # Rows of similar length share a batch, so little of it is padding (LengthGroupedSampler
        # shuffles groups of 50 batches); packed or padding-free batches have no padding to save.
        train_sampling_strategy=_sampling(config),
        completion_only_loss=config.data.completion_only_loss,
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **precision_choices(plan),
    )


def _sampling(config: TuneConfig) -> str:
    training = config.training
    flat = training.packing or training.padding_free
    return "group_by_length" if training.batch_order == "length-grouped" and not flat else "random"


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

    evals = eval_plan(config, prepared.train, prepared.eval)
    args = training_arguments(config, loaded.plan, output_dir, len(prepared.train), evals)
    evaluated = [prepared.eval[i] for i in evals.rows] if evals is not None else []
    trainer = SFTTrainer(
        model=attach_adapter(loaded, config),
        args=args,
        train_dataset=to_dataset(prepared.train),
        eval_dataset=to_dataset(evaluated) if evaluated else None,
        processing_class=loaded.tokenizer,
        callbacks=callbacks,
    )
    model: Any = trainer.model
    base = model.get_base_model()
    if use_answer_only_head(base):
        add_answer_only_head(base)  # over TRL's fused head, which projects every position on CPU
    return trainer


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
