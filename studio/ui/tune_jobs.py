"""The Tune tab's jobs panel: every tuning run, one followed run (progress, charts, log, Stop /
Resume) and the adapters on disk.

Runs train in worker processes and report to the store, so the panel only reads the store on a
timer (a few cheap queries every TICK_S seconds) and sends the browser what changed. A refresh
that fails shows why and leaves the page as it was: the timer never breaks the tab.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from studio.models.adapters import list_adapters
from studio.services import Services
from studio.store import TuningRun
from studio.tuning.jobs import log_tail
from studio.ui.tune_run_views import (
    ADAPTER_HEADERS,
    JOB_HEADERS,
    PLOT_TITLES,
    adapter_rows,
    can_resume,
    can_stop,
    job_rows,
    metric_frame,
    progress_html,
    run_choices,
    run_markdown,
)

log = logging.getLogger(__name__)
TICK_S = 2.0
LOG_LINES = 40
# New log lines scroll the log to its end (tail -f); an unchanged log stays where the user put it.
SCROLL_LOG = """() => {
  const box = document.querySelector('#tune-log textarea');
  if (box && box.value !== box.dataset.shown) { box.dataset.shown = box.value;
    box.scrollTop = box.scrollHeight; }
}"""
KEYS = ("table", "run", "progress", "info", *PLOT_TITLES, "log", "stop", "resume", "adapters")


def pick_run(selected: Any, runs: list[TuningRun]) -> int | None:
    """The followed run: the selected one while it exists, else the newest."""
    ids = [run.id for run in runs]
    if selected not in (None, "") and int(selected) in ids:
        return int(selected)
    return ids[0] if ids else None


@dataclass
class JobsPanel:
    services: Services
    table: gr.Dataframe
    run: gr.Dropdown
    stop: gr.Button
    resume: gr.Button
    notice: gr.Markdown
    progress: gr.HTML
    info: gr.Markdown
    plots: list[gr.LinePlot]  # one per PLOT_TITLES metric
    log: gr.Textbox
    adapters: gr.Dataframe
    refresh_adapters: gr.Button
    cache: gr.State
    timer: gr.Timer

    @property
    def outputs(self) -> list[Any]:
        """What refresh() fills: the KEYS components, the cache, and the refresh notice."""
        parts = [self.table, self.run, self.progress, self.info, *self.plots, self.log,
                 self.stop, self.resume, self.adapters]  # fmt: skip
        return [*parts, self.cache, self.notice]

    def refresh(self, selected: Any, cache: dict[str, str] | None) -> tuple[Any, ...]:
        """Values for outputs: only what changed since this session's last refresh."""
        cache = dict(cache or {})
        try:
            values = self._values(selected, cache)
        except Exception as exc:  # the store may be busy or gone for a moment
            log.exception("refreshing the tuning jobs failed")
            cache["failing"] = "yes"
            skips = [gr.skip() for _ in KEYS]
            return (*skips, cache, f"⚠ Could not refresh the jobs: {exc}")
        # The notice keeps what Stop / Resume said, and loses a failure once refreshes work.
        notice = "" if cache.pop("failing", None) else gr.skip()
        shown = []
        for key in KEYS:
            mark, value = values.get(key, (None, gr.skip()))
            if mark is None or cache.get(key) == mark:
                shown.append(gr.skip())
            else:
                cache[key] = mark
                shown.append(value)
        return (*shown, cache, notice)

    def _values(self, selected: Any, cache: dict[str, str]) -> dict[str, tuple[str | None, Any]]:
        store = self.services.store
        runs = store.list_tuning_runs(limit=100)
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
            return f"⚠ {exc}"
        if status == "running":
            return f"Run #{selected} stops at its next step and saves its adapter."
        return f"Run #{selected} was {'queued' if status == 'cancelled' else status}: {status}."

    def request_resume(self, selected: Any) -> str:
        if selected in (None, ""):
            return "Select a run to resume."
        try:
            s = self.services
            run = s.tuning.resume(int(selected))
        except Exception as exc:
            return f"⚠ {exc}"
        return f"Run #{run.id} {run.status}: it continues from its last checkpoint."

    def connect(self) -> None:
        private: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}
        follow = (self.refresh, [self.run, self.cache], self.outputs)
        self.timer.tick(*follow, **private)
        self.run.input(*follow, **private)
        self.table.select(_clicked_run, None, self.run, **private).then(*follow, **private)
        self.stop.click(self.request_stop, self.run, self.notice, **private).then(
            *follow, **private
        )
        self.resume.click(self.request_resume, self.run, self.notice, **private).then(
            *follow, **private
        )
        self.log.change(None, None, None, js=SCROLL_LOG, **private)
        self.refresh_adapters.click(_forget_adapters, self.cache, self.cache, **private).then(
            *follow, **private
        )


def _forget_adapters(cache: dict[str, str] | None) -> dict[str, str]:
    """The cache without the adapters, so the next refresh lists them again."""
    return {k: v for k, v in (cache or {}).items() if k not in ("adapters", "ended")}


def _clicked_run(evt: gr.SelectData) -> Any:
    row = evt.row_value or []
    return int(row[0]) if row else gr.skip()


def build_jobs_panel(services: Services) -> JobsPanel:
    gr.Markdown("### Jobs", elem_id="tune-jobs-title")
    table = gr.Dataframe(headers=JOB_HEADERS, interactive=False, max_height=240,
                         label="Tuning runs (newest first) — select a row to follow it",
                         elem_id="tune-jobs")  # fmt: skip
    with gr.Row(equal_height=False):
        run = gr.Dropdown([], value=None, label="Follow run", scale=4, elem_id="tune-run")
        stop = gr.Button("Stop", variant="stop", scale=0, min_width=120, interactive=False,
                         elem_id="tune-stop")  # fmt: skip
        resume = gr.Button("Resume", scale=0, min_width=120, visible=False, elem_id="tune-resume")
    notice = gr.Markdown("", elem_id="tune-run-notice")
    progress = gr.HTML(progress_html(None), js_on_load=None, elem_id="tune-progress")
    info = gr.Markdown(run_markdown(None), elem_id="tune-run-info")
    with gr.Row():
        plots = [
            gr.LinePlot(metric_frame([], metric), x="step", y=metric, title=title, height=240,
                        y_title=title.lower(), elem_classes=["tune-plot"],
                        elem_id=f"tune-plot-{metric.replace('_', '-')}")
            for metric, title in PLOT_TITLES.items()
        ]  # fmt: skip
    with gr.Accordion("Log (last 40 lines)", open=True):
        log_box = gr.Textbox(show_label=False, lines=12, max_lines=12, interactive=False,
                             elem_id="tune-log")  # fmt: skip
    with gr.Accordion("Adapters", open=True):
        with gr.Row(equal_height=True):
            gr.Markdown("Use an adapter as the model in Compare or Playground: `adapters/NAME`.",
                        elem_classes=["cmp-hint"])  # fmt: skip
            refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100)
        adapters = gr.Dataframe(headers=ADAPTER_HEADERS, interactive=False, max_height=220,
                                elem_id="tune-adapters")  # fmt: skip
    panel = JobsPanel(services, table, run, stop, resume, notice, progress, info, plots, log_box,
                      adapters, refresh, gr.State({}), gr.Timer(TICK_S))  # fmt: skip
    panel.connect()
    return panel
