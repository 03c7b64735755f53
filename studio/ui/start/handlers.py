"""Start here handlers: run the shipped sample configs through the engines, format via views.

Steps 1 and 3 run a shipped comparison config (services.comparisons.run), streaming progress
and the latest rows; step 2 checks and queues the shipped tuning config (services.tuning) and
follows the worker through the store on a timer; step 4 lists what the loop stored. Loading the
sample configs is studio.quickstart.sample's job: the handlers parse nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import gradio as gr
import pandas as pd

from studio.compare.config import CompareConfig
from studio.compare.engine import RunFinished
from studio.compare.summary import summarize_run
from studio.quickstart import sample
from studio.services import Services
from studio.store.records import TuningRun
from studio.ui.common.errors import log_unexpected
from studio.ui.common.live import STOPPING, LiveRun, follow, live_frame
from studio.ui.common.stops import StopRegistry
from studio.ui.common.tuning_runs import can_stop, progress_html
from studio.ui.start.views import (
    IDLE,
    NOTHING_TO_STOP,
    PREPARING,
    RESULT_HEADERS,
    RUN_HEADERS,
    comparison_row,
    finished_status,
    result_rows,
    tune_markdown,
    tuning_row,
)

log = logging.getLogger(__name__)
EXPECTED = (ValueError, OSError)  # refusals a user can act on; anything else is also logged


class StartHandlers:
    """The handlers of the four steps. `limit` caps the tickets scored (tests, demo mode)."""

    def __init__(self, services: Services, limit: int | None = None) -> None:
        self.services = services
        self.limit = limit
        self.stops = {1: StopRegistry(), 3: StopRegistry()}

    # -- steps 1 and 3: comparisons ---------------------------------------------------------

    def config(self, step: int) -> CompareConfig:
        path = sample.COMPARE_CONFIG if step == 1 else sample.ADAPTER_COMPARE_CONFIG
        config = sample.compare_config(path)
        limit = self.limit
        if self.services.settings.demo:  # a public Space caps rows per comparison
            cap = max(1, self.services.settings.demo_max_examples // config.n_configs)
            limit = min(limit or cap, cap)
        return config if limit is None else config.model_copy(update={"limit": limit})

    def compare(self, step: int, session: str | None) -> Iterator[tuple[Any, ...]]:
        """Values for (progress, live rows, results, status, run button) as the run goes."""
        live: LiveRun | None = None
        with self.stops[step].running(session) as stop:
            try:
                yield (
                    PREPARING,
                    live_frame(None),
                    gr.skip(),
                    "Preparing…",
                    gr.Button(interactive=False),
                )
                config = self.config(step)
                live = LiveRun(config.n_configs)
                for event in follow(self.services.comparisons.run(config, stop), live, stop):
                    if isinstance(event, RunFinished):
                        yield self._finished(live, event)
                    else:
                        yield (
                            live.progress_html(),
                            live_frame(live),
                            gr.skip(),
                            gr.skip(),
                            gr.skip(),
                        )
            except Exception as exc:  # refused before anything was stored, or failed midway
                log_unexpected(log, exc, EXPECTED, "start-here step %s failed", step)
                progress = live.progress_html() if live and live.run_id else IDLE
                yield progress, gr.skip(), gr.skip(), f"✗ {exc}", gr.Button(interactive=True)

    def _finished(self, live: LiveRun, event: RunFinished) -> tuple[Any, ...]:
        summaries = summarize_run(self.services.store, event.run_id)
        frame = pd.DataFrame(result_rows(summaries), columns=RESULT_HEADERS)
        status = finished_status(event, summaries)
        return live.progress_html(), live_frame(live), frame, status, gr.Button(interactive=True)

    def stop_compare(self, step: int, session: str | None) -> str:
        return STOPPING if self.stops[step].stop(session) else NOTHING_TO_STOP

    # -- step 2: tuning ---------------------------------------------------------------------

    def launch_tune(self) -> tuple[str, int | None]:
        """Check and queue the sample's tuning run; (status, run id to follow)."""
        tuning = self.services.tuning
        try:
            check = tuning.check(sample.tune_config(), overwrite=True)
            run = tuning.queue(check)
        except Exception as exc:
            log_unexpected(log, exc, EXPECTED, "start-here tuning launch failed")
            return f"✗ {exc}", None
        started = tuning.start_next()
        what = "started" if started is not None and started.id == run.id else "queued"
        return (
            f"▶ Run #{run.id} {what}: {check.total_steps} steps on {len(check.prepared.train)} "
            "tickets, in its own process (leaving this page does not stop it).",
            run.id,
        )

    def stop_tune(self, run_id: Any) -> str:
        run = self._tuning_run(run_id)
        if run is None or not can_stop(run):
            return "Nothing is training for this step."
        if self.services.tuning.stop(run.id) == "cancelled":
            return f"Run #{run.id} was cancelled before it started."
        return f"Run #{run.id} stops at its next step and saves its adapter."

    def _tuning_run(self, run_id: Any) -> TuningRun | None:
        if run_id not in (None, ""):
            return self.services.store.get_tuning_run(int(run_id))
        return sample.latest_tuning_run(self.services.store)

    def tune_state(self, run_id: Any) -> dict[str, Any]:
        """What step 2 shows now, and whether step 3 may run."""
        run = self._tuning_run(run_id)
        ready = sample.adapter_ready(self.services.settings)
        return {
            "progress": progress_html(run) if run else IDLE,
            "info": tune_markdown(run, sample.adapter_folder(self.services.settings), ready),
            "stop": can_stop(run),
            "step3": ready and not can_stop(run),
        }

    def tick(self, run_id: Any, shown: dict[str, Any] | None) -> tuple[Any, ...]:
        """Timer: progress, info, stop and step-3 buttons, sent only when they changed."""
        shown = dict(shown or {})
        try:
            state = self.tune_state(run_id)
        except Exception:  # the store may be busy for a moment: try again next tick
            log.exception("reading the start-here tuning run failed")
            return (*(gr.skip() for _ in range(4)), shown)
        values = {
            "progress": state["progress"],
            "info": state["info"],
            "stop": gr.Button(interactive=state["stop"]),
            "step3": gr.Button(interactive=state["step3"]),
        }
        out = []
        for key, value in values.items():
            changed = shown.get(key) != state[key]
            shown[key] = state[key]
            out.append(value if changed else gr.skip())
        return (*out, shown)

    # -- step 4: what the loop stored -------------------------------------------------------

    def stored_runs(self) -> pd.DataFrame:
        store = self.services.store
        rows = [
            comparison_row(run, summarize_run(store, run.id))
            for run in sample.sample_comparisons(store, limit=10)
        ]
        name = sample.adapter_name()
        rows += [tuning_row(run) for run in store.list_tuning_runs(limit=200) if run.name == name]
        return pd.DataFrame(rows, columns=RUN_HEADERS)
