"""Start here tab layout and wiring: four steps, each a button next to the command it runs."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.quickstart import sample
from studio.services import Services
from studio.ui.common.live import LIVE_HEADERS
from studio.ui.common.stops import wire_stop
from studio.ui.start.handlers import StartHandlers
from studio.ui.start.views import DEMO_NOTE, IDLE, RESULT_HEADERS, RUN_HEADERS

INTRO = (
    "### Start here: the whole loop, on CPU, on the project's own sample task\n"
    "The project ships a small task of its own: route a customer-support ticket to **billing, "
    "shipping, technical or account** (`studio/samples/tickets-*.csv`, 200 training and 72 "
    "held-out tickets, template `support-tickets`). Run the four steps in order; each button "
    "runs the same engine as the other tabs and the command shown next to it."
)
PRIVATE: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}


@dataclass
class CompareStep:
    """The components of a comparison step (1 or 3)."""

    run: gr.Button
    stop: gr.Button
    status: gr.Markdown
    progress: gr.HTML
    live: gr.Dataframe
    results: gr.Dataframe

    @property
    def outputs(self) -> list[Any]:
        """What StartHandlers.compare fills, in order."""
        return [self.progress, self.live, self.results, self.status, self.run]


@dataclass
class TuneStep:
    """The components of step 2: launch, stop and follow the sample's tuning run."""

    train: gr.Button
    stop: gr.Button
    status: gr.Markdown
    progress: gr.HTML
    info: gr.Markdown
    run_id: gr.State
    shown: gr.State


@dataclass
class StartTab:
    handlers: StartHandlers
    first: CompareStep
    tune: TuneStep
    third: CompareStep
    refresh: gr.Button
    stored: gr.Dataframe
    timer: gr.Timer


def _step_header(step: sample.Step) -> None:
    gr.Markdown(
        f"#### {step.number} · {step.title}\n{step.explanation}\n\n```bash\n{step.command}\n```",
        elem_id=f"start-step-{step.number}",
    )


def _compare_step(step: sample.Step, label: str, interactive: bool = True) -> CompareStep:
    _step_header(step)
    with gr.Row():
        run = gr.Button(label, variant="primary", scale=3, interactive=interactive,
                        elem_id=f"start-run-{step.number}")  # fmt: skip
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id=f"start-stop-{step.number}")
    status = gr.Markdown("", elem_id=f"start-status-{step.number}")
    progress = gr.HTML(IDLE, js_on_load=None, elem_id=f"start-progress-{step.number}")
    with gr.Accordion("Latest rows", open=False):
        live = gr.Dataframe(headers=LIVE_HEADERS, interactive=False, max_height=220,
                            elem_id=f"start-live-{step.number}")  # fmt: skip
    results = gr.Dataframe(headers=RESULT_HEADERS, interactive=False, label="Accuracy",
                           elem_id=f"start-results-{step.number}")  # fmt: skip
    return CompareStep(run, stop, status, progress, live, results)


def _tune_step(h: StartHandlers, demo: bool) -> tuple[TuneStep, bool]:
    """Step 2, and whether step 3 may run yet."""
    _step_header(sample.STEPS[1])
    with gr.Row():
        train = gr.Button("Run step 2: tune the adapter", variant="primary", scale=3,
                          interactive=not demo, elem_id="start-run-2")  # fmt: skip
        stop = gr.Button("Stop", variant="stop", scale=1, interactive=False,
                         elem_id="start-stop-2")  # fmt: skip
    status = gr.Markdown(DEMO_NOTE if demo else "", elem_id="start-status-2")
    initial = h.tune_state(None)
    progress = gr.HTML(initial["progress"], js_on_load=None, elem_id="start-progress-2")
    info = gr.Markdown(initial["info"], elem_id="start-info-2")
    step = TuneStep(train, stop, status, progress, info, gr.State(None), gr.State({}))
    return step, initial["step3"]


def _wire_compare(h: StartHandlers, number: int, ui: CompareStep) -> None:
    def run(request: gr.Request) -> Iterator[tuple[Any, ...]]:
        yield from h.compare(number, request.session_hash)

    def stop(request: gr.Request) -> str:
        return h.stop_compare(number, request.session_hash)

    # One comparison at a time, shared with the Compare tab: they share the model and the CPU.
    streaming: dict[str, Any] = {"show_progress": "hidden", "concurrency_id": "compare",
                                 "api_visibility": "private"}  # fmt: skip
    ui.run.click(run, None, ui.outputs, **streaming)
    wire_stop(ui.stop, stop, ui.status, api_visibility="private")


def _wire(tab: StartTab) -> None:
    h, step = tab.handlers, tab.tune
    _wire_compare(h, 1, tab.first)
    _wire_compare(h, 3, tab.third)
    follow = (h.tick, [step.run_id, step.shown],
              [step.progress, step.info, step.stop, tab.third.run, step.shown])  # fmt: skip
    step.train.click(h.launch_tune, None, [step.status, step.run_id], concurrency_id="tune-check",
                     api_visibility="private").then(*follow, **PRIVATE)  # fmt: skip
    step.stop.click(h.stop_tune, step.run_id, step.status, **PRIVATE).then(*follow, **PRIVATE)
    tab.timer.tick(*follow, **PRIVATE)
    tab.refresh.click(h.stored_runs, None, tab.stored, **PRIVATE)


def build_start_tab(services: Services) -> StartTab:
    h = StartHandlers(services)
    gr.Markdown(INTRO, elem_classes=["cmp-hint"])
    first = _compare_step(sample.STEPS[0], "Run step 1: compare 0 vs 4 shots")
    tune, step3 = _tune_step(h, services.settings.demo)
    third = _compare_step(sample.STEPS[2], "Run step 3: base vs adapter", step3)
    _step_header(sample.STEPS[3])
    refresh = gr.Button("Show what the loop stored", elem_id="start-run-4")
    stored = gr.Dataframe(headers=RUN_HEADERS, interactive=False, wrap=True,
                          elem_id="start-stored")  # fmt: skip
    tab = StartTab(h, first, tune, third, refresh, stored, gr.Timer(2.0))
    _wire(tab)
    return tab
