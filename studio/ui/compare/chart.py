"""Compare tab: accuracy per configuration as an inline SVG bar chart with 95% CI whiskers.

gr.BarPlot (gradio 6) has no error bars, and an accuracy without its interval invites reading
noise as a difference; so the chart is drawn here, with no plotting library, as one SVG string.
Colours come from the gradio theme's CSS variables (with fallbacks), so it follows dark mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

from studio.compare.summary import ConfigSummary

LABEL_W, PLOT_W, VALUE_W = 250, 440, 170
ROW_H, BAR_H, TOP, BOTTOM = 30, 18, 14, 44
TICKS = (0.0, 0.25, 0.5, 0.75, 1.0)
TEXT = "fill:var(--body-text-color,#1f2937)"
MUTED = "fill:var(--body-text-color-subdued,#6b7280)"
GRID = "stroke:var(--border-color-primary,#d1d5db)"
BAR = "fill:var(--color-accent,#f97316);fill-opacity:0.75"
WHISKER = "stroke:var(--body-text-color,#1f2937);stroke-width:1.6"


def _x(value: float) -> float:
    return LABEL_W + max(0.0, min(1.0, value)) * PLOT_W


def _axis(height: float) -> list[str]:
    bottom = height - BOTTOM
    parts = []
    for tick in TICKS:
        x = _x(tick)
        parts.append(
            f'<line x1="{x:.1f}" y1="{TOP - 4}" x2="{x:.1f}" y2="{bottom}" style="{GRID}"/>'
        )
        parts.append(
            f'<text x="{x:.1f}" y="{bottom + 16}" text-anchor="middle" font-size="11" '
            f'style="{MUTED}">{tick:g}</text>'
        )
    parts.append(
        f'<text x="{LABEL_W + PLOT_W / 2:.1f}" y="{height - 8}" text-anchor="middle" '
        f'font-size="12" style="{MUTED}">accuracy (bars) with 95% bootstrap CI (whiskers)</text>'
    )
    return parts


def _row(summary: ConfigSummary, tag: str, y: float) -> list[str]:
    middle = y + ROW_H / 2
    label = tag if len(tag) <= 38 else tag[:37] + "…"
    parts = [
        f'<text class="cmp-label" x="{LABEL_W - 8}" y="{middle + 4:.1f}" text-anchor="end" '
        f'font-size="12" style="{TEXT}"><title>{escape(summary.label)}</title>'
        f"{escape(label)}</text>"
    ]
    acc = summary.accuracy
    if summary.n == 0 or math.isnan(acc.value):
        parts.append(
            f'<text x="{LABEL_W + 6}" y="{middle + 4:.1f}" font-size="12" style="{MUTED}">'
            "no results yet</text>"
        )
        return parts
    top = middle - BAR_H / 2
    low, high = _x(acc.low), _x(acc.high)
    text = f"{acc.value:.3f} [{acc.low:.3f}, {acc.high:.3f}] n={acc.n}"
    parts += [
        f'<rect class="cmp-bar" x="{LABEL_W}" y="{top:.1f}" width="{_x(acc.value) - LABEL_W:.1f}" '
        f'height="{BAR_H}" rx="2" style="{BAR}"><title>{escape(text)}</title></rect>',
        f'<line class="cmp-ci" x1="{low:.1f}" y1="{middle:.1f}" x2="{high:.1f}" '
        f'y2="{middle:.1f}" style="{WHISKER}"/>',
    ]
    for x in (low, high):
        parts.append(
            f'<line class="cmp-ci-cap" x1="{x:.1f}" y1="{middle - 6:.1f}" x2="{x:.1f}" '
            f'y2="{middle + 6:.1f}" style="{WHISKER}"/>'
        )
    parts.append(
        f'<text x="{LABEL_W + PLOT_W + 10}" y="{middle + 4:.1f}" font-size="12" '
        f'style="{TEXT}">{escape(text)}</text>'
    )
    return parts


def accuracy_chart_svg(summaries: Sequence[ConfigSummary], tags: Sequence[str]) -> str:
    """Horizontal bars (one per config, in grid order) from 0 to 1, whiskers at the 95% CI."""
    if not summaries:
        return '<p class="cmp-empty">No configurations to chart yet.</p>'
    ordered = sorted(summaries, key=lambda s: s.position)
    width = LABEL_W + PLOT_W + VALUE_W
    height = TOP + ROW_H * len(ordered) + BOTTOM
    parts = _axis(height)
    for i, summary in enumerate(ordered):
        parts += _row(summary, tags[summary.position], TOP + i * ROW_H)
    return (
        f'<svg class="cmp-chart" role="img" aria-label="Accuracy per configuration with 95% CI" '
        f'viewBox="0 0 {width} {height}" width="100%" style="max-width:{width}px" '
        f'xmlns="http://www.w3.org/2000/svg" font-family="sans-serif">' + "".join(parts) + "</svg>"
    )
