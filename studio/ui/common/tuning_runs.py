"""A tuning run's progress as the Tune tab and Start here show it, without gradio."""

from __future__ import annotations

from studio.store.records import TuningRun
from studio.ui.common.formatting import duration, progress_bar

ACTIVE = ("queued", "running")


def can_stop(run: TuningRun | None) -> bool:
    return run is not None and run.status in ACTIVE and not run.stop_requested


def progress_text(run: TuningRun) -> str:
    """step 3/10 · 30% · loss 1.2345 · eval 1.3000 · 250 tok/s · 1 m 05 s elapsed · ETA 2 m 30 s"""
    progress = run.progress or {}
    step, total = int(progress.get("step") or 0), progress.get("total_steps")
    parts = [f"step {step}/{total or '?'}"]
    if total:
        parts.append(f"{100 * step / total:.0f}%")
    for key, name in (("loss", "loss"), ("eval_loss", "eval")):
        if progress.get(key) is not None:
            parts.append(f"{name} {float(progress[key]):.4f}")
    if progress.get("tokens_per_second"):
        parts.append(f"{float(progress['tokens_per_second']):.0f} tok/s")
    if progress.get("elapsed_seconds") is not None:
        parts.append(f"{duration(progress['elapsed_seconds'])} elapsed")
    if run.status == "running":
        stopping = " · stopping at the next step…" if run.stop_requested else ""
        parts.append(f"ETA {duration(progress.get('eta_seconds'))}{stopping}")
    else:
        parts.append(f"run #{run.id} {run.status}")
    return " · ".join(parts)


def progress_html(run: TuningRun | None) -> str:
    if run is None:
        return progress_bar(0, "No run selected.", "idle")
    progress = run.progress or {}
    total = progress.get("total_steps") or 0
    share = 1.0 if run.status == "completed" else (progress.get("step") or 0) / max(total, 1)
    state = "stopping" if run.stop_requested and run.status == "running" else run.status
    return progress_bar(share, progress_text(run), state)
