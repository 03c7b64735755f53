"""Following long work from the terminal: a comparison's event stream, and a tuning run queued
and then watched in the store, each as a progress bar on stderr where Ctrl-C asks it to stop."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.store import TuningRun
    from studio.tuning.jobs import LaunchCheck
    from studio.tuning.queue import TuningQueue

POLL_SECONDS = 1.0


def follow_comparison(events: Iterable[Any], stop: threading.Event) -> tuple[int | None, str]:
    """Drive a comparison's events with a progress bar on stderr; Ctrl-C asks it to stop.
    Returns the run id (None when it never started) and how it ended."""
    # lazy: tqdm and the comparison engine (sqlalchemy, numpy) stay out of `studio --help`
    from tqdm import tqdm

    from studio.compare.engine import (
        CellStarted,
        JudgeStarted,
        RowDone,
        RowJudged,
        RunFinished,
        RunStarted,
    )

    bar = None
    status, run_id = "failed", None
    try:
        for event in events:
            if isinstance(event, RunStarted):
                run_id = event.run_id
                bar = tqdm(total=event.total, unit="ex", desc=f"run #{run_id}", file=sys.stderr)
            elif isinstance(event, CellStarted) and bar is not None:
                bar.set_postfix_str(event.label)
            elif isinstance(event, (RowDone, RowJudged)) and bar is not None:
                bar.update(1)
            elif isinstance(event, JudgeStarted) and bar is not None:
                bar.close()
                bar = tqdm(total=event.total, unit="ans", desc="judging", file=sys.stderr)
            elif isinstance(event, RunFinished):
                status = event.status
    except KeyboardInterrupt:
        stop.set()
        status = "stopped"
    finally:
        if bar is not None:
            bar.close()
    return run_id, status


def queue_tuning(tuning: TuningQueue, check: LaunchCheck) -> TuningRun:
    """Queue a checked run and start the queue, saying so when another job trains first."""
    run, started = tuning.launch(check)
    if started is None or started.id != run.id:
        print(f"run #{run.id} queued behind the job that is training now")
    return run


def watch_tuning(tuning: TuningQueue, run_id: int) -> TuningRun:
    """Follow a tuning run in the store until it ends; Ctrl-C requests a stop (the worker saves
    the adapter at its next step) and keeps watching. The run as it ended."""
    from tqdm import tqdm  # lazy: tqdm stays out of `studio --help`

    bar = tqdm(total=None, unit="step", desc=f"run #{run_id}", file=sys.stderr)
    try:
        while True:
            try:
                run = tuning.store.get_tuning_run(run_id)
                if run is None:
                    raise ValueError(f"tuning run #{run_id} is no longer in the store")
                _update_bar(bar, run)
                if run.finished:
                    return run
                if run.status == "queued":
                    tuning.start_next()  # advances the queue if the studio is closed
                time.sleep(POLL_SECONDS)
            except KeyboardInterrupt:
                print("\nstopping: the worker saves the adapter at its next step…", file=sys.stderr)
                tuning.store.request_tuning_stop(run_id)
    finally:
        bar.close()


def _update_bar(bar: Any, run: TuningRun) -> None:
    progress = run.progress or {}
    total = progress.get("total_steps")
    if total and bar.total != total:
        bar.total = total
    step = int(progress.get("step") or 0)
    if step > bar.n:
        bar.update(step - bar.n)
    parts = [run.status]
    for key, label in (("loss", "loss"), ("eval_loss", "eval"), ("tokens_per_second", "tok/s")):
        value = progress.get(key)
        if value is not None:
            parts.append(
                f"{label} {value:.4g}" if key != "tokens_per_second" else f"{value:.0f} {label}"
            )
    bar.set_postfix_str(" ".join(parts), refresh=True)
