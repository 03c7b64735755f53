"""The Tune tab's jobs panel: every tuning run, one followed run (progress, charts, log, Stop /
Resume) and the adapters on disk. Components only: TuneHandlers.refresh fills them on a timer."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.ui.common.tuning_runs import progress_html
from studio.ui.tune.runs import (
    ADAPTER_HEADERS,
    JOB_HEADERS,
    PLOT_TITLES,
    metric_frame,
    run_markdown,
)

TICK_S = 2.0
# New log lines scroll the log to its end (tail -f); an unchanged log stays where the user put it.
SCROLL_LOG = """() => {
  const box = document.querySelector('#tune-log textarea');
  if (box && box.value !== box.dataset.shown) { box.dataset.shown = box.value;
    box.scrollTop = box.scrollHeight; }
}"""


@dataclass
class JobsPanel:
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
        """What TuneHandlers.refresh fills: the KEYS components, the cache, and the notice."""
        parts = [self.table, self.run, self.progress, self.info, *self.plots, self.log,
                 self.stop, self.resume, self.adapters]  # fmt: skip
        return [*parts, self.cache, self.notice]


def build_jobs_panel() -> JobsPanel:
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
    return JobsPanel(table, run, stop, resume, notice, progress, info, plots, log_box, adapters,
                     refresh, gr.State({}), gr.Timer(TICK_S))  # fmt: skip
