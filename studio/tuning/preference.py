"""Preference tuning: DPO, ORPO and KTO with TRL on the same base, LoRA and device plan as SFT.

Owns building the trainer of a preference run and measuring it. TRL 1.16 ships `DPOTrainer` and
`KTOTrainer` in `trl` and `ORPOTrainer` in `trl.experimental.orpo`; each gets the strings of
studio.tuning.preference_data and tokenizes them itself. The reference model of DPO and KTO is
never a second copy of the model: a fresh adapter is handed to TRL as a `peft_config`, and with
`ref_model=None` TRL computes the reference log-probabilities with the adapter disabled — the
base itself. Continuing from an SFT adapter (`from_adapter`), the adapter is loaded trainable on
the base and TRL keeps a frozen copy of its LoRA weights (the "ref" adapter, a few MB) as the
reference, which is the usual recipe: the SFT model is the reference. ORPO needs no reference.

The held-out preference accuracy, before and after training, is the share of held-out pairs
whose implicit reward ranks the chosen answer above the rejected one: for DPO
`logp_policy(y) - logp_ref(y)`, for ORPO the log-odds of the mean token probability, for KTO
whether the reward's sign agrees with the label. Ties count half, so a policy that is still its
reference (every DPO run at step 0) scores 0.5, chance.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.hosting import HostingPolicy
from studio.models.adapters import AdapterError, adapter_path, read_adapter
from studio.settings import Settings
from studio.tuning.config import TuneConfig, TuneConfigError
from studio.tuning.preference_data import (
    PreferenceExample,
    PreparedPreference,
    prepare_preference_data,
)
from studio.tuning.trainer import (
    lora_config,
    precision_choices,
    schedule_arguments,
    total_steps,
)

if TYPE_CHECKING:
    from studio.models.device import DevicePlan
    from studio.models.loading import LoadedModel

DEFAULT_BETA = 0.1
EVALS_PER_RUN = 10


def is_preference(config: TuneConfig) -> bool:
    return config.preference.method != "sft"


def beta_of(config: TuneConfig) -> float:
    return config.preference.beta if config.preference.beta is not None else DEFAULT_BETA


def start_adapter(config: TuneConfig, adapters_dir: Path) -> Path | None:
    """The adapter a run continues from, checked: an adapter of this run's base model."""
    name = config.preference.from_adapter
    if name is None:
        return None
    folder = adapter_path(adapters_dir, Path(name).name if "/" in name else name)
    try:
        info = read_adapter(folder)
    except AdapterError as exc:
        raise TuneConfigError(f"preference.from_adapter: {exc}") from None
    if info.base_model != config.model.spec:
        raise TuneConfigError(
            f"preference.from_adapter: adapters/{info.name} was trained on {info.base_model}, "
            f"not {config.model.spec}. Fix: --model {info.base_model}, or another adapter"
        )
    return folder


def prepare_preference(
    config: TuneConfig, tokenizer: Any, policy: HostingPolicy, settings: Settings
) -> PreparedPreference:
    """The launch check's (and the worker's) preparation of a preference run."""
    start_adapter(config, settings.adapters_dir)
    return prepare_preference_data(
        config.data, config.preference.method, tokenizer, policy, seed=config.training.seed
    )


# ---------------------------------------------------------------------------------------------
# The trainer


def preference_arguments(
    config: TuneConfig, plan: DevicePlan, output_dir: Path, n_train: int, n_eval: int
) -> Any:
    """DPOConfig / ORPOConfig / KTOConfig with the studio's settings and device choices (their
    own defaults — gradient checkpointing on, bf16, lr 1e-6 — are all overridden here)."""
    training, method = config.training, config.preference.method
    steps = total_steps(config, n_train)
    every = training.eval_steps or max(1, steps // EVALS_PER_RUN)
    periodic = n_eval > 0 and every < steps
    common = dict(
        **schedule_arguments(config, output_dir, steps),
        eval_strategy="steps" if periodic else "no",
        eval_steps=every if periodic else None,
        max_length=config.data.max_length,
        beta=beta_of(config),
        report_to="none",
        disable_tqdm=True,
        dataloader_num_workers=0,
        **precision_choices(plan),
    )
    return _config_class(method)(**common)


def _config_class(method: str) -> Any:
    if method == "orpo":
        from trl.experimental.orpo import ORPOConfig  # lazy: trl pulls in torch

        return ORPOConfig
    if method == "kto":
        from trl import KTOConfig  # lazy: trl pulls in torch

        return KTOConfig
    from trl import DPOConfig  # lazy: trl pulls in torch

    return DPOConfig


def policy_model(loaded: LoadedModel, config: TuneConfig, start: Path | None) -> Any:
    """The model TRL trains: the (k-bit prepared) base, or the start adapter on it, trainable."""
    from peft import PeftModel, prepare_model_for_kbit_training  # lazy: peft pulls in torch

    model = loaded.model
    if config.model.quantization != "none":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.training.gradient_checkpointing
        )
    model.train()
    if start is None:
        return model
    return PeftModel.from_pretrained(model, str(start), is_trainable=True)


def build_preference_trainer(
    config: TuneConfig,
    loaded: LoadedModel,
    prepared: PreparedPreference,
    output_dir: Path,
    callbacks: list[Any],
    adapters_dir: Path,
) -> Any:
    """The TRL trainer of a preference run; the policy is a PeftModel once it is built."""
    from datasets import Dataset  # lazy: datasets is slow to import; only training needs it

    start = start_adapter(config, adapters_dir)
    model = policy_model(loaded, config, start)
    method = config.preference.method
    args = preference_arguments(
        config, loaded.plan, output_dir, len(prepared.train), len(prepared.eval)
    )
    data = {"train_dataset": Dataset.from_list([e.record() for e in prepared.train])}
    if prepared.eval:  # also read by the worker's final evaluation
        data["eval_dataset"] = Dataset.from_list([e.record() for e in prepared.eval])
    peft = lora_config(config.lora) if start is None else None
    if method == "orpo":
        from trl.experimental.orpo import ORPOTrainer  # lazy: as above

        trainer_class: Any = ORPOTrainer
    else:
        from trl import DPOTrainer, KTOTrainer  # lazy: as above

        trainer_class = KTOTrainer if method == "kto" else DPOTrainer
    return trainer_class(
        model=model,
        args=args,
        processing_class=loaded.tokenizer,
        callbacks=callbacks,
        peft_config=peft,
        **data,
    )


def adapter_to_save(trainer: Any) -> None:
    """Drop TRL's frozen "ref" copy (from_adapter runs), so the folder holds one adapter."""
    model = trainer.model
    if "ref" in getattr(model, "peft_config", {}):
        model.set_adapter("default")
        model.delete_adapter("ref")


# ---------------------------------------------------------------------------------------------
# Held-out preference accuracy


SCORE_BATCH = 8  # sequences per forward pass when scoring held-out answers


def answer_logps(model: Any, sequences: list[tuple[list[int], list[int]]], limit: int) -> list[Any]:
    """Per (prompt, answer): the answer tokens' log-probabilities after the prompt, cut at
    `limit` as TRL's collator cuts (keep the start), in right-padded batches."""
    import torch  # lazy: torch is slow to import; only model work needs it

    device = next(model.parameters()).device
    out: list[Any] = []
    for first in range(0, len(sequences), SCORE_BATCH):
        batch = sequences[first : first + SCORE_BATCH]
        rows = [(prompt + answer)[:limit] for prompt, answer in batch]
        width = max(len(row) for row in rows)
        ids = torch.tensor([row + [0] * (width - len(row)) for row in rows], device=device)
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows], device=device)
        logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits
        picked = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        picked = picked.gather(2, ids[:, 1:, None])[..., 0]
        for row, (prompt, _answer) in enumerate(batch):
            out.append(picked[row, len(prompt) - 1 : len(rows[row]) - 1].cpu())
    return out


def reference(model: Any) -> Any:
    """The reference model's context: the "ref" adapter where TRL keeps one, else no adapter."""
    from trl.trainer.utils import use_adapter  # lazy: trl pulls in torch and transformers

    if not hasattr(model, "peft_config"):
        return contextlib.nullcontext()
    return use_adapter(model, "ref" if "ref" in model.peft_config else None)


def _scores(model: Any, examples: list[PreferenceExample], limit: int) -> list[dict[str, Any]]:
    """Per example, per answer ('chosen', 'rejected'): (policy logps, reference logps)."""
    keys = [
        (i, name)
        for i, e in enumerate(examples)
        for name in ("chosen", "rejected")
        if name == "chosen" or e.rejected is not None
    ]
    sequences = [(examples[i].prompt_ids, getattr(examples[i], f"{name}_ids")) for i, name in keys]
    policy = answer_logps(model, sequences, limit)
    with reference(model):
        ref = answer_logps(model, sequences, limit)
    scores: list[dict[str, Any]] = [{} for _ in examples]
    for (i, name), mine, theirs in zip(keys, policy, ref, strict=True):
        scores[i][name] = (mine, theirs)
    return scores


def _log_odds(logps: Any) -> float:
    mean = float(logps.mean()) if len(logps) else 0.0
    return mean - math.log1p(-math.exp(min(mean, -1e-7)))


def preference_accuracy(
    model: Any, examples: list[PreferenceExample], config: TuneConfig
) -> dict[str, float] | None:
    """Held-out accuracy, mean reward margin and mean log-prob margin (see the module notes)."""
    import torch  # lazy: as above

    if not examples:
        return None
    method, beta = config.preference.method, beta_of(config)
    was_training = model.training
    model.eval()
    with torch.no_grad():
        scores = _scores(model, examples, config.data.max_length)
    model.train(was_training)
    wins, margins, logp_margins = 0.0, [], []
    for example, score in zip(examples, scores, strict=True):
        reward = {k: beta * float(p.sum() - r.sum()) for k, (p, r) in score.items()}
        if method == "kto":
            signed = reward["chosen"] if example.label else -reward["chosen"]
            wins += 1.0 if signed > 0 else 0.5 if signed == 0 else 0.0
            continue
        if method == "orpo":
            reward = {k: _log_odds(p) for k, (p, _r) in score.items()}
        margin = reward["chosen"] - reward["rejected"]
        wins += 1.0 if margin > 0 else 0.5 if margin == 0 else 0.0
        margins.append(margin)
        logp_margins.append(float(score["chosen"][0].sum() - score["rejected"][0].sum()))
    result = {"accuracy": wins / len(examples), "pairs": float(len(examples))}
    if margins:
        result["reward_margin"] = sum(margins) / len(margins)
        result["logp_margin"] = sum(logp_margins) / len(logp_margins)
    return result


def preference_summary(
    config: TuneConfig, before: dict[str, float] | None, after: dict[str, float] | None
) -> dict[str, Any]:
    """What a preference run adds to its summary (the run, the adapter card, --json)."""

    def pick(key: str) -> dict[str, float | None]:
        return {
            "before": before.get(key) if before else None,
            "after": after.get(key) if after else None,
        }

    return {
        "method": config.preference.method,
        "beta": beta_of(config),
        "from_adapter": config.preference.from_adapter,
        "preference_accuracy": pick("accuracy"),
        "reward_margin": pick("reward_margin"),
        "logp_margin": pick("logp_margin"),
        "heldout_pairs": int(before["pairs"]) if before else 0,
    }
