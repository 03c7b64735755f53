"""The Compare form's values (text boxes, number fields, choices) as a CompareConfig.

No gradio here: the values become a CompareConfig through build_config, exactly as the CLI's
flags do; a value that cannot be read raises ValueError naming the setting, like the
CompareConfigError of build_config. The handlers show either as a gr.Error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.compare.config import CompareConfig, build_config

# Every input of Start (and of the /compare API), in the order the tab passes them.
FORM_FIELDS = ("data", "shot_pool", "templates", "models", "shots", "seeds", "limit", "pool_size",
               "scoring", "selection", "quantization", "metric", "regex", "max_new_tokens",
               "temperature", "batch_rows", "label_column", "column_map", "name",
               "calibrate", "judge", "judge_template", "judge_mode", "samples")  # fmt: skip


def text(value: Any) -> str | None:
    """Stripped text, None when blank."""
    return (str(value).strip() or None) if value is not None else None


def whole(value: Any) -> int | None:
    """A number field's value as an int, None when blank."""
    return None if value is None or value == "" else int(value)


def parse_ints(value: Any, setting: str) -> list[int]:
    """'0, 5' → [0, 5]."""
    parts = [p.strip() for p in str(value or "").replace(";", ",").split(",") if p.strip()]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ValueError(
            f"Invalid setting '{setting}': '{value}' is not a comma-separated list of whole "
            "numbers (e.g. 0,5)."
        ) from None
    if not values:
        raise ValueError(f"Invalid setting '{setting}': give at least one number (e.g. 0).")
    return values


def parse_mapping(value: Any) -> dict[str, str]:
    """'sentence=text, label=stars' → {'sentence': 'text', 'label': 'stars'}."""
    mapping = {}
    for part in str(value or "").replace("\n", ",").split(","):
        if not part.strip():
            continue
        variable, sep, column = part.partition("=")
        if not sep or not variable.strip() or not column.strip():
            raise ValueError(
                f"Invalid setting 'column mapping': '{part.strip()}' is not variable=column "
                "(e.g. sentence=text)."
            )
        mapping[variable.strip()] = column.strip()
    return mapping


def same_file(first: Any, second: Any) -> bool:
    """Whether two path values name the same file (blank never does)."""
    a, b = text(first), text(second)
    return a is not None and b is not None and Path(a).resolve() == Path(b).resolve()


def compare_config(values: tuple[Any, ...]) -> CompareConfig:
    """A CompareConfig from the values of FORM_FIELDS (same order); ValueError names the setting."""
    v = dict(zip(FORM_FIELDS, values, strict=True))
    given = {
        "name": text(v["name"]),
        "data": text(v["data"]) or "",
        "shot_pool": text(v["shot_pool"]),
        "pool_size": whole(v["pool_size"]),
        "templates": list(v["templates"] or []),
        "models": list(v["models"] or []),
        "shots": parse_ints(v["shots"], "shots"),
        "seeds": parse_ints(v["seeds"], "seeds"),
        "limit": whole(v["limit"]),
        "scoring": v["scoring"],
        "selection": v["selection"],
        "quantization": v["quantization"],
        "metric": v["metric"],
        "regex": text(v["regex"]),
        "max_new_tokens": whole(v["max_new_tokens"]),
        "temperature": v["temperature"],
        "batch_rows": whole(v["batch_rows"]),
        "label_column": text(v["label_column"]),
        "column_map": parse_mapping(v["column_map"]),
        "calibrate": bool(v["calibrate"]),
        "judge": text(v["judge"]),
        "judge_template": text(v["judge_template"]),
        "judge_mode": text(v["judge_mode"]),
        "samples": whole(v["samples"]),
    }
    # A blank field means the CLI's default, as an absent flag does.
    return build_config(**{key: x for key, x in given.items() if x is not None})
