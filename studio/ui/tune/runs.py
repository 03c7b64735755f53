"""Tune tab: following tuning runs: the jobs table, one run's story, its metric charts, and the
adapters on disk (the progress bar, shared with Start here, is in common/tuning_runs.py).

No gradio here: every function takes store records (TuningRun, MetricPoint) or AdapterInfo and
returns strings, table rows or DataFrames for the native plots, so it is testable on records
built by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import pandas as pd

from studio.models.adapters import AdapterInfo
from studio.store.records import TUNING_RESUMABLE, MetricPoint, TuningRun
from studio.ui.common.formatting import duration, number

JOB_HEADERS = ["run", "name", "status", "step", "loss", "eval loss", "tok/s", "ETA", "created"]
ADAPTER_HEADERS = ["name", "use as model", "base model", "eval loss", "created"]
# Metric point field -> plotted column. One plot per metric: gradio's LinePlot fixes its colour
# series when first drawn, so train and eval loss in one plot would lose the later series.
# (Column names without spaces: gradio drops the axis title of such a column and clips labels.)
PLOT_TITLES = {"loss": "Train loss", "eval_loss": "Eval loss", "learning_rate": "Learning rate"}
STATUS_ICONS = {
    "queued": "⏳", "running": "▶", "completed": "✓", "stopped": "■", "failed": "✗",
    "interrupted": "⚡", "cancelled": "⊘",
}  # fmt: skip


def step_text(run: TuningRun) -> str:
    progress = run.progress or {}
    return f"{progress.get('step', 0)}/{progress.get('total_steps', '?')}"


def eta_text(run: TuningRun) -> str:
    return duration((run.progress or {}).get("eta_seconds")) if run.status == "running" else "–"


def created_text(stamp: datetime | str | None) -> str:
    if stamp is None:
        return ""
    if isinstance(stamp, datetime):
        return stamp.strftime("%Y-%m-%d %H:%M")
    try:
        return datetime.fromisoformat(stamp).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return stamp


def job_rows(runs: Sequence[TuningRun]) -> list[list[Any]]:
    """One row per run, as listed (the store lists newest first)."""
    rows = []
    for run in runs:
        progress = run.progress or {}
        speed = progress.get("tokens_per_second")
        rows.append(
            [
                run.id,
                run.name,
                f"{STATUS_ICONS.get(run.status, '')} {run.status}".strip(),
                step_text(run),
                number(progress.get("loss")),
                number(progress.get("eval_loss")),
                "–" if speed is None else f"{speed:.0f}",
                eta_text(run),
                created_text(run.created_at),
            ]
        )
    return rows


def run_label(run: TuningRun) -> str:
    return f"#{run.id} · {run.name} · {run.status}"


def run_choices(runs: Sequence[TuningRun]) -> list[tuple[str, int]]:
    return [(run_label(run), run.id) for run in runs]


def adapter_spec(run: TuningRun) -> str:
    return f"adapters/{run.name}"


def run_markdown(run: TuningRun | None, queued_behind: int | None = None) -> str:
    """The followed run: what it trains, how it ended (a failure says why), where the adapter is."""
    if run is None:
        return "No tuning run yet: check the settings above, then **Launch**."
    config = run.config or {}
    data = config.get("data", {})
    quant = config.get("model", {}).get("quantization", "?")
    template = f" · template `{data['template']}`" if data.get("template") else ""
    lines = [
        f"**Run #{run.id} — {run.name}** · {STATUS_ICONS.get(run.status, '')} **{run.status}**",
        f"base `{run.base_model}` ({quant}) · data `{data.get('path', '?')}`{template} · "
        f"created {created_text(run.created_at)}",
    ]
    if run.status == "queued" and queued_behind is not None:
        lines.append(f"Waiting for run #{queued_behind} to finish; one job trains at a time.")
    if run.error:
        lines.append(f"> **{'Why' if run.status == 'failed' else 'Note'}:** {run.error}")
    lines += _ending_lines(run)
    return "\n\n".join(lines)


def _ending_lines(run: TuningRun) -> list[str]:
    summary = run.summary or {}
    lines = []
    if summary:
        parts = [
            f"{label} {number(summary.get(key))}"
            for key, label in (("train_loss", "train loss"), ("eval_loss", "eval loss"))
            if summary.get(key) is not None
        ]
        if summary.get("wall_seconds") is not None:
            parts.append(f"{duration(summary['wall_seconds'])} wall time")
        if parts:
            lines.append("Final: " + " · ".join(parts))
    if run.status in ("completed", "stopped"):
        lines.append(
            f"Adapter: `{run.adapter_path}` — use `{adapter_spec(run)}` as a model in "
            "Compare or Playground."
        )
    if run.status in TUNING_RESUMABLE:
        lines.append("**Resume** continues from the last checkpoint.")
    return lines


def can_resume(run: TuningRun | None) -> bool:
    return run is not None and run.status in TUNING_RESUMABLE


def metric_frame(points: Sequence[MetricPoint], metric: str) -> pd.DataFrame:
    """One metric (loss, eval_loss, learning_rate) against the step, for a LinePlot.

    One value a step, the last logged (the plot sums values that share a step, and a resumed
    run logs its checkpoint's step again); numbers typed even when empty, as the plot takes its
    axis types from the dtypes."""
    values = {p.step: getattr(p, metric) for p in points if getattr(p, metric) is not None}
    frame = pd.DataFrame(sorted(values.items()), columns=["step", metric])
    return frame.astype({"step": "int64", metric: "float64"})


def adapter_rows(adapters: Sequence[AdapterInfo]) -> list[list[Any]]:
    return [
        [
            info.name,
            f"adapters/{info.name}",
            info.base_model,
            number(info.eval_loss),
            created_text(info.created_at),
        ]
        for info in adapters
    ]
