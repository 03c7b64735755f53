"""The Tune form's values (text boxes, number fields, checkboxes) as a TuneConfig.

No gradio here. The form's fields are FORM_FIELDS; `tune_config` turns their values into the
same flat settings `studio tune` builds from its flags (studio.tuning.config.flat_config), so a
value that cannot be read, or a setting the config refuses, is a TuneConfigError naming it.
"""

from __future__ import annotations

import math
from typing import Any

from studio.tuning.config import (
    FLAT_FIELDS,
    DataSettings,
    LoraSettings,
    ModelSettings,
    TrainingSettings,
    TuneConfig,
    TuneConfigError,
    flat_config,
)

SECTIONS: dict[str, Any] = {
    "model": ModelSettings,
    "lora": LoraSettings,
    "data": DataSettings,
    "training": TrainingSettings,
}
# Form fields read as whole numbers; blank (or 0 for the "0 = off" ones) means "not given".
WHOLE = ("lora_r", "lora_alpha", "batch_size", "grad_accumulation", "max_length", "seed",
         "save_steps")  # fmt: skip
ZERO_IS_BLANK = ("max_steps", "eval_steps", "limit")
DECIMAL = ("lora_dropout", "lr", "warmup_ratio", "epochs", "eval_split")
SWITCHES = ("use_rslora", "use_dora", "packing", "padding_free", "gradient_checkpointing")
CHOICES = ("model", "quantization", "format", "scheduler")
# Every input of Check and Launch, in the order the tab passes them.
FORM_FIELDS = ("name", "overwrite", "data", "limit", "template", "column_map", "model",
               "quantization", "format", "lora_r", "lora_alpha", "lora_dropout",
               "target_modules", "use_rslora", "use_dora", "lr", "scheduler", "warmup_ratio",
               "epochs", "max_steps", "batch_size", "grad_accumulation", "max_length",
               "eval_split", "eval_steps", "save_steps", "seed", "packing", "padding_free",
               "gradient_checkpointing", "prompt_loss")  # fmt: skip


def default(flat: str) -> Any:
    """The TuneConfig default of a flat setting (what the form starts with)."""
    section, field = FLAT_FIELDS[flat]
    return SECTIONS[section].model_fields[field].get_default(call_default_factory=True)


def describe(flat: str) -> str:
    """The config's description of a flat setting (the form's help text)."""
    section, field = FLAT_FIELDS[flat]
    return str(SECTIONS[section].model_fields[field].description or "")


def label(flat: str) -> str:
    """A flat setting as TuneConfigError names it: 'training.learning_rate'."""
    return ".".join(FLAT_FIELDS[flat])


def text(value: Any) -> str | None:
    """Stripped text, None when blank."""
    return (str(value).strip() or None) if value is not None else None


def whole(value: Any, setting: str, zero_is_blank: bool = False) -> int | None:
    """A number field's value as an int; None when blank (or 0 where 0 means off)."""
    number = decimal(value, setting)
    if number is None:
        return None
    if not number.is_integer():
        raise TuneConfigError(f"{setting}: '{value}' is not a whole number")
    return None if zero_is_blank and number == 0 else int(number)


def decimal(value: Any, setting: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise TuneConfigError(f"{setting}: '{value}' is not a number") from None
    if not math.isfinite(number):
        raise TuneConfigError(f"{setting}: '{value}' is not a finite number")
    return number


def column_map(value: Any) -> dict[str, str]:
    """'sentence=text' lines (or commas) → {'sentence': 'text'}."""
    mapping: dict[str, str] = {}
    for part in str(value or "").replace(",", "\n").splitlines():
        if not part.strip():
            continue
        variable, sep, column = part.partition("=")
        if not sep or not variable.strip() or not column.strip():
            raise TuneConfigError(
                f"data.column_map: '{part.strip()}' is not VARIABLE=COLUMN (e.g. sentence=text)"
            )
        mapping[variable.strip()] = column.strip()
    return mapping


def target_modules(value: Any) -> str | list[str] | None:
    """'all-linear', or 'q_proj, v_proj' → ['q_proj', 'v_proj']; blank → the default."""
    names = [part.strip() for part in str(value or "").replace("\n", ",").split(",")]
    names = [name for name in names if name]
    if not names:
        return None
    return "all-linear" if names == ["all-linear"] else names


def flat_values(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as flat settings (None = not given, so the config's default)."""
    flat: dict[str, Any] = {"name": text(values.get("name")), "data": text(values.get("data"))}
    for key in WHOLE:
        flat[key] = whole(values.get(key), label(key))
    for key in ZERO_IS_BLANK:
        flat[key] = whole(values.get(key), label(key), zero_is_blank=True)
    for key in DECIMAL:
        flat[key] = decimal(values.get(key), label(key))
    for key in (*SWITCHES, *CHOICES):
        flat[key] = values.get(key)
    flat["model"] = text(values.get("model"))
    flat["template"] = text(values.get("template"))
    flat["column_map"] = column_map(values.get("column_map"))
    flat["target_modules"] = target_modules(values.get("target_modules"))
    flat["completion_only_loss"] = not bool(values.get("prompt_loss"))
    return flat


def tune_config(values: dict[str, Any]) -> TuneConfig:
    """A TuneConfig from the form values (keys of FORM_FIELDS); TuneConfigError names the field."""
    flat = flat_values(values)
    if flat["name"] is None:
        raise TuneConfigError("name: give the adapter a name (it becomes the folder adapters/NAME)")
    if flat["data"] is None:
        raise TuneConfigError("data.path: give the training data file (or upload one)")
    return flat_config(**flat)


def form_values(values: tuple[Any, ...]) -> dict[str, Any]:
    """The positional inputs of Check / Launch as a dict keyed by FORM_FIELDS."""
    return dict(zip(FORM_FIELDS, values, strict=True))
