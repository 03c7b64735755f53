"""Small texts more than one tab shows, without gradio: a progress bar, an estimate with its
interval, a duration, a number."""

from __future__ import annotations

import math
from html import escape
from typing import Any

from studio.compare.metrics import Estimate


def progress_bar(share: float, text: str, state: str) -> str:
    """A bar filled to `share` (0 to 1) with one line of text under it; `state` colours it."""
    width = max(0.0, min(1.0, share)) * 100
    return (
        f'<div class="cmp-progress" data-state="{escape(state)}">'
        f'<div class="cmp-progress-track"><div class="cmp-progress-fill" '
        f'style="width:{width:.1f}%"></div></div>'
        f'<div class="cmp-progress-text">{escape(text)}</div></div>'
    )


def estimate_text(estimate: Estimate | None) -> str:
    """0.812 [0.781, 0.843]; a dash when there is nothing to estimate."""
    if estimate is None or math.isnan(estimate.value):
        return "–"
    return f"{estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}]"


def duration(seconds: float | None) -> str:
    """45 s, 3 m 05 s, 1 h 02 m; a dash when unknown."""
    if seconds is None or seconds != seconds or seconds < 0:  # None, NaN or nonsense
        return "–"
    whole = round(float(seconds))
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} m {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} m"


def number(value: Any, digits: int = 4) -> str:
    return "–" if value is None else f"{float(value):.{digits}f}"
