"""The Compare form's loose values (text boxes, number fields) as typed settings.

No gradio here: a value that cannot be read raises ValueError naming the setting, which the form
shows as a gr.Error, like the CompareConfigError of build_config.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


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
