"""The typed settings of a tuning run, built the same way by the UI, the CLI and YAML files.

One TuneConfig holds four concerns — the base model, the LoRA adapter, the data and its format,
and the optimisation — each its own pydantic model with a description per field and `extra=forbid`,
so a misspelt key is an error naming it. Device-dependent choices (bf16, the paged 8-bit
optimizer) are not settings: they follow from the device in `studio.tuning.trainer`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from studio.models.adapters import ADAPTER_NAME

Quantization = Literal["4bit", "8bit", "none"]
DataFormat = Literal[
    "auto", "alpaca", "messages", "template", "preference", "sharegpt-preference", "kto"
]
Method = Literal["sft", "dpo", "orpo", "kto"]
Scheduler = Literal["linear", "cosine", "constant", "constant_with_warmup"]
BatchOrder = Literal["length-grouped", "random"]


class TuneConfigError(ValueError):
    """A tuning setting is invalid; the message names the field and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSettings(_Section):
    """The base model the adapter is trained on."""

    spec: str = Field(
        "smollm2-135m-instruct",
        min_length=1,
        description="Base model: bundled alias, Hugging Face id, local folder or .gguf file.",
    )
    quantization: Quantization = Field(
        "4bit", description="4bit (QLoRA: NF4 with double quantization), 8bit or none."
    )
    trust_remote_code: bool = Field(False, description="Run model code shipped with the model.")


class LoraSettings(_Section):
    """The low-rank adapter: which layers get one, and how big."""

    r: int = Field(16, ge=1, le=1024, description="LoRA rank.")
    alpha: int = Field(32, ge=1, le=4096, description="LoRA scaling numerator (alpha / r).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA input.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear",
        description="'all-linear' (every linear layer but the output head) or module names.",
    )
    use_rslora: bool = Field(False, description="Rank-stabilised scaling alpha / sqrt(r).")
    use_dora: bool = Field(False, description="Weight-decomposed LoRA (DoRA).")

    @field_validator("target_modules")
    @classmethod
    def _modules_named(cls, value: list[str] | str) -> list[str] | str:
        if isinstance(value, list):
            names = [name.strip() for name in value if name.strip()]
            if not names:
                raise ValueError("give at least one module name, or 'all-linear'")
            bad = [name for name in names if not re.fullmatch(r"[\w.*]+", name)]
            if bad:
                raise ValueError(f"not module names: {', '.join(bad)}")
            return list(dict.fromkeys(names))
        return value


class DataSettings(_Section):
    """Where the instruction data comes from and how a row becomes a training string."""

    path: str = Field(min_length=1, description="Training data (CSV, TSV, JSONL, JSON, Parquet).")
    format: DataFormat = Field(
        "auto",
        description=(
            "alpaca (instruction, input, output), messages (messages or conversations lists), "
            "template (any table through a studio prompt template), or auto."
        ),
    )
    template: str | None = Field(
        None, description="Studio prompt template (name or YAML file) used as the format."
    )
    column_map: dict[str, str] = Field(
        default_factory=dict, description="Template variable -> data column."
    )
    eval_split: float = Field(
        0.1, ge=0.0, lt=0.9, description="Fraction of rows held out for eval loss (0 = none)."
    )
    max_length: int = Field(512, ge=16, le=131072, description="Tokens per training sequence.")
    completion_only_loss: bool = Field(
        True, description="Mask the prompt so only the answer contributes to the loss."
    )
    limit: int | None = Field(None, ge=1, description="Use only the first N rows.")

    @model_validator(mode="after")
    def _template_when_needed(self) -> DataSettings:
        if self.format == "template" and not self.template:
            raise ValueError("format 'template' needs a template (name or YAML file)")
        return self


class TrainingSettings(_Section):
    """The optimisation. GPU-only choices (bf16, paged 8-bit AdamW) follow from the device."""

    learning_rate: float = Field(2e-4, gt=0.0, le=1.0, description="Peak learning rate.")
    scheduler: Scheduler = Field("linear", description="Learning-rate schedule after warmup.")
    warmup_ratio: float = Field(0.03, ge=0.0, le=0.5, description="Share of steps warming up.")
    epochs: float = Field(1.0, gt=0.0, le=100.0, description="Passes over the training rows.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (overrides epochs)."
    )
    batch_size: int = Field(8, ge=1, le=1024, description="Sequences per device step.")
    grad_accumulation: int = Field(1, ge=1, le=1024, description="Steps per optimizer update.")
    batch_order: BatchOrder = Field(
        "length-grouped",
        description=(
            "length-grouped (rows of similar length share a batch: less padding) or random."
        ),
    )
    packing: bool = Field(False, description="Pack several short rows into one sequence.")
    padding_free: bool = Field(
        False,
        description=(
            "Concatenate a batch into one sequence without padding (positions restart at each "
            "row, and transformers keeps attention within it with SDPA, eager or flash attention)."
        ),
    )
    gradient_checkpointing: bool = Field(
        False, description="Recompute activations to save memory (slower)."
    )
    seed: int = Field(0, ge=0, description="Seed for data order, the split and LoRA init.")
    eval_steps: int | None = Field(
        None, ge=1, description="Eval loss every N steps (default: about 10 evals per run)."
    )
    eval_rows: int | None = Field(
        None,
        ge=1,
        description=(
            "Eval rows each evaluation reads (default: as many as keep evaluation near 10% of "
            "the run's compute)."
        ),
    )
    logging_steps: int = Field(1, ge=1, description="Record metrics every N steps.")
    save_steps: int = Field(50, ge=1, description="Checkpoint every N steps (for resume).")
    weight_decay: float = Field(0.0, ge=0.0, le=1.0, description="AdamW weight decay.")
    max_grad_norm: float = Field(1.0, gt=0.0, description="Gradient clipping norm.")
    processes: int = Field(
        1,
        ge=1,
        le=64,
        description=(
            "Training processes, one per local GPU (DDP through accelerate launch); the batch "
            "is per process, so the effective batch is batch_size x grad_accumulation x this."
        ),
    )


class PreferenceSettings(_Section):
    """The objective: supervised (sft) or a preference method (studio.tuning.preference)."""

    method: Method = Field(
        "sft",
        description=(
            "sft (instruction tuning), dpo (pairs, reference = the base with the adapter off), "
            "orpo (pairs, no reference) or kto (good/bad labelled answers)."
        ),
    )
    beta: float | None = Field(
        None,
        gt=0.0,
        le=100.0,
        description="Weight of the preference term (dpo/kto: KL beta; orpo: lambda); default 0.1.",
    )
    from_adapter: str | None = Field(
        None,
        min_length=1,
        description="Continue from this adapter (adapters/NAME) of the same base: it trains on.",
    )

    @model_validator(mode="after")
    def _preference_only(self) -> PreferenceSettings:
        if self.method == "sft" and (self.beta is not None or self.from_adapter is not None):
            raise ValueError(
                "beta and from_adapter apply to the preference methods (dpo, orpo, kto); set "
                "method, or leave them out for sft"
            )
        return self


class TuneConfig(_Section):
    """Everything one tuning run needs; stored with the run and written into the adapter."""

    name: str = Field(description="Adapter name: the run writes adapters/<name>/.")
    model: ModelSettings = Field(default_factory=ModelSettings)
    lora: LoraSettings = Field(default_factory=LoraSettings)
    data: DataSettings
    training: TrainingSettings = Field(default_factory=TrainingSettings)
    preference: PreferenceSettings = Field(default_factory=PreferenceSettings)

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not ADAPTER_NAME.match(value) or value in (".", ".."):
            raise ValueError(
                f"{value!r} is not a valid adapter name: use 1-64 letters, digits, '.', '_' or "
                "'-', starting with a letter or digit (it becomes the folder adapters/<name>)"
            )
        return value

    @model_validator(mode="after")
    def _packing_excludes_padding_free(self) -> TuneConfig:
        if self.training.packing and self.training.padding_free:
            raise ValueError("choose packing or padding_free, not both")
        return self

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)


# Flat names (CLI flags, UI fields) -> (section, field). The CLI and the UI both build a
# TuneConfig from flat values through this one table.
FLAT_FIELDS: dict[str, tuple[str, str]] = {
    "model": ("model", "spec"),
    "quantization": ("model", "quantization"),
    "trust_remote_code": ("model", "trust_remote_code"),
    "lora_r": ("lora", "r"),
    "lora_alpha": ("lora", "alpha"),
    "lora_dropout": ("lora", "dropout"),
    "target_modules": ("lora", "target_modules"),
    "use_rslora": ("lora", "use_rslora"),
    "use_dora": ("lora", "use_dora"),
    "data": ("data", "path"),
    "format": ("data", "format"),
    "template": ("data", "template"),
    "column_map": ("data", "column_map"),
    "eval_split": ("data", "eval_split"),
    "max_length": ("data", "max_length"),
    "completion_only_loss": ("data", "completion_only_loss"),
    "limit": ("data", "limit"),
    "lr": ("training", "learning_rate"),
    "learning_rate": ("training", "learning_rate"),
    "scheduler": ("training", "scheduler"),
    "warmup_ratio": ("training", "warmup_ratio"),
    "epochs": ("training", "epochs"),
    "max_steps": ("training", "max_steps"),
    "batch_size": ("training", "batch_size"),
    "grad_accumulation": ("training", "grad_accumulation"),
    "packing": ("training", "packing"),
    "padding_free": ("training", "padding_free"),
    "gradient_checkpointing": ("training", "gradient_checkpointing"),
    "seed": ("training", "seed"),
    "eval_steps": ("training", "eval_steps"),
    "eval_rows": ("training", "eval_rows"),
    "batch_order": ("training", "batch_order"),
    "logging_steps": ("training", "logging_steps"),
    "save_steps": ("training", "save_steps"),
    "weight_decay": ("training", "weight_decay"),
    "max_grad_norm": ("training", "max_grad_norm"),
    "processes": ("training", "processes"),
    "method": ("preference", "method"),
    "beta": ("preference", "beta"),
    "from_adapter": ("preference", "from_adapter"),
}


def nest(values: dict[str, Any], base: dict[str, Any] | None = None) -> dict[str, Any]:
    """Put flat values (None = not given) into the nested layout, over `base`."""
    nested: dict[str, Any] = {
        k: (dict(v) if isinstance(v, dict) else v) for k, v in (base or {}).items()
    }
    for key, value in values.items():
        if value is None:
            continue
        if key == "name":
            nested["name"] = value
            continue
        if key not in FLAT_FIELDS:
            raise TuneConfigError(f"unknown tuning setting '{key}'")
        section, field = FLAT_FIELDS[key]
        nested.setdefault(section, {})[field] = value
    return nested


def build_tune_config(nested: dict[str, Any]) -> TuneConfig:
    """TuneConfig from nested values, with one readable message per bad field."""
    try:
        return TuneConfig.model_validate(nested)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_describe(err) for err in exc.errors()))
        raise TuneConfigError("Invalid tuning settings — " + "; ".join(problems)) from None


def _describe(err: Any) -> str:
    where = ".".join(str(p) for p in err["loc"] if not str(p).startswith("function-after"))
    message = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        message = "unknown setting (check the spelling against `studio tune --help`)"
    if "target_modules" in err["loc"] and "must" not in message and "module names" not in message:
        return "lora.target_modules: give 'all-linear' or a list of module names"
    return f"{where or 'config'}: {message}"


def flat_config(**values: Any) -> TuneConfig:
    """TuneConfig from flat values (CLI flags, UI fields)."""
    return build_tune_config(nest(values))


def load_tune_config(path: str | Path, **overrides: Any) -> TuneConfig:
    """Read a tune.yaml (nested sections); flat overrides from the command line win."""
    try:
        values = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise TuneConfigError(f"{path}: cannot read the tuning config: {exc}") from None
    if not isinstance(values, dict):
        raise TuneConfigError(f"{path}: a tuning config must be a mapping of settings")
    return build_tune_config(nest(overrides, values))
