"""Tune tab handlers: Check and Launch through services.tuning, and the jobs panel's refresh,
Stop and Resume.

Check runs the engine's check (config, model, data, memory) and shows what would be trained;
Launch checks again and queues the run, then starts the queue; a worker process trains it and
reports to the store, which the jobs panel reads on a timer (a few cheap queries a tick) and
sends the browser only what changed. Problems are shown in the status box, never as pop-ups, a
refused launch queues nothing, and a refresh that fails leaves the page as it was.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import gradio as gr
import pandas as pd

from studio.models.adapters import list_adapters
from studio.models.errors import ModelError
from studio.services import Services
from studio.store import StoreError, TuningRun
from studio.tuning.jobs import LaunchCheck, log_tail
from studio.ui.common.errors import log_unexpected, notice
from studio.ui.common.tuning_runs import can_stop, progress_html
from studio.ui.tune.form import form_values, tune_config
from studio.ui.tune.runs import (
    ADAPTER_HEADERS,
    JOB_HEADERS,
    PLOT_TITLES,
    adapter_rows,
    can_resume,
    job_rows,
    metric_frame,
    run_choices,
    run_markdown,
)
from studio.ui.tune.views import (
    EMPTY_PREVIEW,
    EMPTY_REPORT,
    error_html,
    ready_text,
    report_html,
    status_html,
    training_preview,
)

log = logging.getLogger(__name__)
EXPECTED = (ValueError, ModelError, StoreError, OSError)  # problems a user can act on
LOG_LINES = 40
# What `refresh` fills (the jobs panel's components), before the cache and the notice.
KEYS = ("table", "run", "progress", "info", *PLOT_TITLES, "log", "stop", "resume", "adapters")


def pick_run(selected: Any, runs: list[TuningRun]) -> int | None:
    """The followed run: the selected one while it exists, else the newest."""
    ids = [run.id for run in runs]
    if selected not in (None, "") and int(selected) in ids:
        return int(selected)
    return ids[0] if ids else None


def without_adapters(cache: dict[str, str] | None) -> dict[str, str]:
    """The cache without the adapters, so the next refresh lists them again."""
    return {k: v for k, v in (cache or {}).items() if k not in ("adapters", "ended")}


def _failed(exc: Exception) -> str:
    log_unexpected(log, exc, EXPECTED, "tune check failed unexpectedly")
    return error_html(exc)


class TuneHandlers:
    """Check and Launch parse the form, call the engine and format what it says; the jobs panel
    follows what the store holds."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # --- Check and Launch ---------------------------------------------------------------------

    def _check(self, values: tuple[Any, ...]) -> tuple[LaunchCheck, bool]:
        given = form_values(values)
        overwrite = bool(given.get("overwrite"))
        return self.services.tuning.check(tune_config(given), overwrite), overwrite

    def check(self, *values: Any) -> tuple[str, str, str]:
        """(status, report, training strings) for the form's values."""
        try:
            checked, overwrite = self._check(values)
        except Exception as exc:
            return _failed(exc), EMPTY_REPORT, EMPTY_PREVIEW
        return (
            status_html(ready_text(checked, overwrite), "ok"),
            report_html(checked),
            training_preview(checked),
        )

    def launch(self, *values: Any) -> tuple[Any, ...]:
        """(status, report, training strings, followed run): check, queue, start the queue."""
        try:
            checked, _overwrite = self._check(values)
            run = self.services.tuning.queue(checked)
        except Exception as exc:
            return _failed(exc), EMPTY_REPORT, EMPTY_PREVIEW, gr.skip()
        message = self._start(run.id)
        runs = self.services.store.list_tuning_runs(limit=100)
        follow = gr.Dropdown(choices=run_choices(runs), value=run.id)
        return (
            status_html(message, "ok"),
            report_html(checked),
            training_preview(checked),
            follow,
        )

    def _start(self, run_id: int) -> str:
        try:
            started = self.services.tuning.start_next()
        except Exception:  # the queue watcher starts it a few seconds later
            log.exception("starting the tuning queue failed")
            started = None
        if started is not None and started.id == run_id:
            return f"▶ Run #{run_id} started: it trains in a worker process; follow it below."
        running = self.services.store.list_tuning_runs(limit=1, status="running")
        behind = f" behind run #{running[0].id}" if running else ""
        return f"⏳ Run #{run_id} queued{behind}: it starts when the queue reaches it."

    # --- the jobs panel -----------------------------------------------------------------------

    def refresh(self, selected: Any, cache: dict[str, str] | None) -> tuple[Any, ...]:
        """(*KEYS values, cache, notice): only what changed since this session's last refresh."""
        cache = dict(cache or {})
        try:
            values = self._values(selected, cache)
        except Exception as exc:  # the store may be busy or gone for a moment
            log.exception("refreshing the tuning jobs failed")
            cache["failing"] = "yes"
            skips = [gr.skip() for _ in KEYS]
            return (*skips, cache, f"⚠ Could not refresh the jobs: {exc}")
        # The notice keeps what Stop / Resume said, and loses a failure once refreshes work.
        shown_notice = "" if cache.pop("failing", None) else gr.skip()
        shown = []
        for key in KEYS:
            mark, value = values.get(key, (None, gr.skip()))
            if mark is None or cache.get(key) == mark:
                shown.append(gr.skip())
            else:
                cache[key] = mark
                shown.append(value)
        return (*shown, cache, shown_notice)

    def _values(self, selected: Any, cache: dict[str, str]) -> dict[str, tuple[str | None, Any]]:
        """Each KEYS value with the mark that says whether it changed."""
        runs = self.services.store.list_tuning_runs(limit=100)
        run_id = pick_run(selected, runs)
        run = next((r for r in runs if r.id == run_id), None)
        table = pd.DataFrame(job_rows(runs), columns=JOB_HEADERS)
        choices = run_choices(runs)
        values: dict[str, tuple[str | None, Any]] = {
            "table": (table.to_json(), table),
            "run": (json.dumps([choices, run_id]), gr.Dropdown(choices=choices, value=run_id)),
            **self._followed(run, runs),
        }
        ended = json.dumps([(r.id, r.status) for r in runs if r.finished])
        if cache.get("ended") != ended or "adapters" not in cache:
            cache["ended"] = ended
            values["adapters"] = self._adapters()
        return values

    def _followed(self, run: TuningRun | None, runs: list[TuningRun]) -> dict[str, Any]:
        points = self.services.store.metric_points(run.id) if run else []
        behind = next((r.id for r in runs if r.status == "running"), None)
        log_text = log_tail(run, LOG_LINES) if run else ""
        html, text = progress_html(run), run_markdown(run, behind)
        # Plain frames only: a changed plot setting (x_lim...) makes gradio redraw the chart
        # from the data it had before the update.
        frames = {metric: metric_frame(points, metric) for metric in PLOT_TITLES}
        return {
            "progress": (html, html),
            "info": (text, text),
            **{metric: (frame.to_json(), frame) for metric, frame in frames.items()},
            "log": (log_text, log_text),
            "stop": (str(can_stop(run)), gr.Button(interactive=can_stop(run))),
            "resume": (str(can_resume(run)), gr.Button(visible=can_resume(run))),
        }

    def _adapters(self) -> tuple[str, pd.DataFrame]:
        frame = pd.DataFrame(
            adapter_rows(list_adapters(self.services.settings.adapters_dir)),
            columns=ADAPTER_HEADERS,
        )
        return frame.to_json(), frame

    def request_stop(self, selected: Any) -> str:
        if selected in (None, ""):
            return "Select a run to stop."
        try:
            before = self.services.store.get_tuning_run(int(selected))
            if before is not None and before.finished:
                return f"Run #{selected} is {before.status}: nothing to stop."
            status = self.services.tuning.stop(int(selected))
        except Exception as exc:
            return notice(exc)
        if status == "running":
            return f"Run #{selected} stops at its next step and saves its adapter."
        return f"Run #{selected} was {'queued' if status == 'cancelled' else status}: {status}."

    def request_resume(self, selected: Any) -> str:
        if selected in (None, ""):
            return "Select a run to resume."
        try:
            run = self.services.tuning.resume(int(selected))
        except Exception as exc:
            return notice(exc)
        return f"Run #{run.id} {run.status}: it continues from its last checkpoint."
