"""Tune tab: train a LoRA / QLoRA adapter on the template that won in Compare, watch it, stop or
resume it, and find the adapter to compare next.

The tab builds the same TuneConfig as `studio tune` and calls the same engine: Check runs
check_launch (config, model, data, memory) and shows what would be trained, Launch checks again
and queues the run (queue_run, start_next); a worker process trains it and reports to the store,
which the jobs panel follows. Problems are shown in the status box, never as pop-ups, and a
refused launch queues nothing.
"""

from __future__ import annotations

import logging
from typing import Any

import gradio as gr

from studio.models.errors import ModelError
from studio.services import Services
from studio.store import StoreError
from studio.tuning.config import TuneConfigError
from studio.tuning.jobs import LaunchCheck
from studio.ui.tune_form import build_tune_form
from studio.ui.tune_jobs import build_jobs_panel
from studio.ui.tune_run_views import run_choices
from studio.ui.tune_values import form_values, tune_config
from studio.ui.tune_views import (
    EMPTY_PREVIEW,
    EMPTY_REPORT,
    error_html,
    preview_html,
    ready_text,
    report_html,
    status_html,
)

log = logging.getLogger(__name__)
INTRO = (
    "Train a **LoRA / QLoRA adapter** on a small base model, in the exact format of a prompt "
    "template (the one that won in Compare). **Check** shows the data report, the memory "
    "estimate and the exact training strings; **Launch** queues the run (one trains at a time, "
    "in its own process: closing the page does not stop it). Same engine as `studio tune`."
)
EXPECTED = (ValueError, ModelError, StoreError, OSError)  # problems a user can act on
DEMO_NOTE = (
    "**Demo mode** (STUDIO_DEMO=1): training is switched off on this studio, so Check and "
    "Launch refuse. Run the studio on your own machine (`make run`) to tune adapters."
)


class TuneActions:
    """Check and Launch: parse the form, call the engine, format what it says."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def _check(self, values: tuple[Any, ...]) -> tuple[LaunchCheck, bool]:
        given = form_values(values)
        config = tune_config(given)
        self._refuse_duplicate(config.name)
        overwrite = bool(given.get("overwrite"))
        services = self.services
        return services.tuning.check(config, overwrite), overwrite

    def _refuse_duplicate(self, name: str) -> None:
        for run in self.services.store.list_tuning_runs(limit=100):
            if run.name == name and run.status in ("queued", "running"):
                raise TuneConfigError(
                    f"name: run #{run.id} ({run.status}) already trains adapters/{name}. Fix: "
                    "choose another name, or stop that run first"
                )

    def check(self, *values: Any) -> tuple[str, str, str]:
        try:
            checked, overwrite = self._check(values)
        except Exception as exc:
            return _failed(exc), EMPTY_REPORT, EMPTY_PREVIEW
        return (
            status_html(ready_text(checked, overwrite), "ok"),
            report_html(checked),
            preview_html(checked.prepared.train),
        )

    def launch(self, *values: Any) -> tuple[Any, ...]:
        try:
            checked, _overwrite = self._check(values)
            services = self.services
            run = services.tuning.queue(checked)
        except Exception as exc:
            return _failed(exc), EMPTY_REPORT, EMPTY_PREVIEW, gr.skip()
        message = self._start(run.id)
        runs = self.services.store.list_tuning_runs(limit=100)
        follow = gr.Dropdown(choices=run_choices(runs), value=run.id)
        return (
            status_html(message, "ok"),
            report_html(checked),
            preview_html(checked.prepared.train),
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


def _failed(exc: Exception) -> str:
    if not isinstance(exc, EXPECTED):
        log.exception("tune check failed unexpectedly", exc_info=exc)
    return error_html(exc)


def build_tune_tab(services: Services) -> None:
    gr.Markdown(INTRO, elem_classes=["cmp-hint"])
    if services.settings.demo:
        gr.Markdown(DEMO_NOTE, elem_id="tune-demo")
    actions = TuneActions(services)
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            form = build_tune_form(services)
            with gr.Row():
                check = gr.Button("Check", scale=1, elem_id="tune-check")
                launch = gr.Button("Launch", variant="primary", scale=2, elem_id="tune-launch")
            status = gr.HTML("", js_on_load=None, elem_id="tune-status")
        with gr.Column(scale=6):
            report = gr.HTML(EMPTY_REPORT, js_on_load=None, elem_id="tune-report")
            with gr.Accordion("Exact training strings (first rows)", open=True):
                preview = gr.HTML(EMPTY_PREVIEW, js_on_load=None, elem_id="tune-preview")
    panel = build_jobs_panel(services)
    # One check or launch at a time: each loads a tokenizer, and two launches must not race.
    options: dict[str, Any] = {"concurrency_id": "tune-check", "api_visibility": "private"}
    checked = [status, report, preview]
    check.click(actions.check, form.inputs, checked, **options)
    # Callable by API clients as /tune_launch (undocumented: its inputs are the whole form).
    api = {**options, "api_name": "tune_launch", "api_visibility": "undocumented"}
    launch.click(actions.launch, form.inputs, [*checked, panel.run], **api).then(
        panel.refresh, [panel.run, panel.cache], panel.outputs, api_visibility="private"
    )
