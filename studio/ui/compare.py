"""Compare tab: run a grid of models × templates × shots × seeds, watch it stream, read the results.

The tab builds the same CompareConfig as `studio compare` and runs it through the same engine
(services.comparisons.run, or .resume for a stopped run), which validates everything before
storing and stores every row as it is scored; the tab only parses the form, paces the updates
and formats what the store holds.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import pandas as pd

from studio.compare.engine import CellStarted, Event, RunFinished, RunStarted
from studio.models.errors import ModelError
from studio.services import Services
from studio.store import StoreError
from studio.ui.compare_live import LIVE_HEADERS, LiveRun, progress_bar
from studio.ui.compare_results import (
    ResultsPanel,
    build_results_panel,
    load_run,
    past_runs_table,
)
from studio.ui.compare_setup import SetupForm, build_setup_form
from studio.ui.compare_views import config_tags
from studio.ui.stops import StopRegistry

INTRO = (
    "Score every combination of **models × templates × shot counts × seeds** on the same "
    "examples; each row is stored the moment it is scored, with its exact prompt. Accuracy comes "
    "with a 95% bootstrap interval: overlapping intervals are not a difference. "
    "Same engine as `studio compare`."
)
FINAL_STATUS = {
    "completed": "✓ Run #{run} completed: {done}/{total} rows.",
    "stopped": "■ Run #{run} stopped: the {done}/{total} rows scored so far are kept.",
    "failed": "✗ Run #{run} failed after {done}/{total} rows: {error}",
}
PREPARING = progress_bar(0, "Preparing: reading the data and the templates…", "running")
IDLE = progress_bar(0, "Not running.", "idle")
SKIP: Any = gr.skip()


class CompareRun:
    """Start and Resume: generators following the engine's events, yielding values for
    outputs()."""

    def __init__(self, services: Services, form: SetupForm, panel: ResultsPanel) -> None:
        self.services, self.form, self.panel = services, form, panel
        self.stops = StopRegistry()

    def outputs(self, progress: Any, live: Any, status: Any, start: Any) -> list[Any]:
        return [progress, live, status, start, *self.panel.outputs, *self.panel.cell_outputs,
                self.panel.past]  # fmt: skip

    def update(
        self,
        progress: str,
        live: LiveRun | None,
        status: Any = SKIP,
        running: bool | None = None,
        results: tuple[Any, ...] | None = None,
        past: Any = SKIP,
    ) -> tuple[Any, ...]:
        """Values for outputs(); gr.skip() for whatever is not given."""
        rows = pd.DataFrame(live.live_rows() if live else [], columns=LIVE_HEADERS)
        start = SKIP if running is None else gr.Button(interactive=not running)
        results = results or self.panel.unchanged(hide_resume=bool(running))
        skips = tuple(gr.skip() for _ in self.panel.cell_outputs)
        cells = self.panel.clear_cell() if running else skips
        return (progress, rows, status, start, *results, *cells, past)

    def start(
        self, request: gr.Request, view: str, values: tuple[Any, ...]
    ) -> Iterator[tuple[Any, ...]]:
        config = self.form.config(values)
        return self._follow(
            request,
            view,
            config.n_configs,
            lambda stop: self.services.comparisons.run(config, stop),
        )

    def resume(self, request: gr.Request, view: str, run_id: Any) -> Iterator[tuple[Any, ...]]:
        """Finish a stopped, interrupted or failed run: only its missing rows are scored."""
        run = load_run(self.services, run_id)
        return self._follow(
            request,
            view,
            len(run.configs),
            lambda stop: self.services.comparisons.resume(run.id, stop),
        )

    def _follow(
        self,
        request: gr.Request,
        view: str,
        n_cells: int,
        events: Callable[[threading.Event], Iterator[Event]],
    ) -> Iterator[tuple[Any, ...]]:
        live = LiveRun(n_cells)
        yield self.update(PREPARING, None, "", running=True)
        stop = self.stops.begin(request.session_hash)
        try:
            for event in events(stop):
                live.stopping = stop.is_set()
                if live.apply(event):
                    yield self._on(event, live, view)
        except Exception as exc:
            if live.run_id is None:  # refused before anything was stored
                yield self.update(IDLE, None, "", running=False)
            if isinstance(exc, (ModelError, StoreError, ValueError)):
                raise gr.Error(str(exc)) from None
            raise
        finally:
            self.stops.end(request.session_hash, stop)

    def _on(self, event: Any, live: LiveRun, view: str) -> tuple[Any, ...]:
        if isinstance(event, RunStarted):
            live.tags = config_tags(load_run(self.services, event.run_id).configs)
        if isinstance(event, RunFinished):
            status = FINAL_STATUS.get(event.status, FINAL_STATUS["stopped"]).format(
                run=event.run_id, done=live.done, total=live.total, error=event.error
            )
            results = self.panel.render(event.run_id, view)
            past = past_runs_table(self.services)
            return self.update(live.progress_html(), live, status, False, results, past)
        if isinstance(event, CellStarted) and event.position > 0 and live.run_id is not None:
            # A cell is complete: show the results so far while the next one runs.
            return self.update(
                live.progress_html(), live, results=self.panel.render(live.run_id, view)
            )
        return self.update(live.progress_html(), live)

    def request_stop(self, request: gr.Request) -> str:
        if self.stops.stop(request.session_hash):
            return "Stopping at the next batch; the rows scored so far are kept."
        return "Nothing is running in this session."


def build_compare_tab(services: Services) -> None:
    gr.Markdown(INTRO, elem_classes=["cmp-hint"])
    form = build_setup_form(services)
    with gr.Row():
        start = gr.Button("Start", variant="primary", scale=3, elem_id="compare-start")
        stop = gr.Button("Stop", variant="stop", scale=1, elem_id="compare-stop")
    status = gr.Markdown("", elem_id="compare-status")
    progress = gr.HTML(IDLE, js_on_load=None, elem_id="compare-progress")
    with gr.Accordion("Latest rows (newest first)", open=True):
        live = gr.Dataframe(
            headers=LIVE_HEADERS,
            interactive=False,
            wrap=True,
            max_height=260,
            elem_id="compare-live",
        )
    panel = build_results_panel(services)
    runner = CompareRun(services, form, panel)

    def start_run(request: gr.Request, view: str, *values: Any) -> Iterator[tuple[Any, ...]]:
        yield from runner.start(request, view, values)

    def resume_run(request: gr.Request, view: str, run_id: Any) -> Iterator[tuple[Any, ...]]:
        yield from runner.resume(request, view, run_id)

    def request_stop(request: gr.Request) -> str:
        return runner.request_stop(request)

    outputs = runner.outputs(progress, live, status, start)
    # One comparison at a time (Start or Resume, any session): they share the model and CPU.
    streaming: dict[str, Any] = {
        "show_progress": "hidden", "concurrency_id": "compare", "api_visibility": "private"
    }  # fmt: skip
    # Callable by API clients as /compare (undocumented: its inputs are the whole form).
    api = {**streaming, "api_name": "compare", "api_visibility": "undocumented"}
    start.click(start_run, [panel.view, *form.inputs], outputs, **api)
    panel.resume.click(resume_run, [panel.view, panel.run_id], outputs, **streaming)
    # Not queued: a stop must get through while this session's run holds the queue slot.
    stop.click(request_stop, None, status, queue=False, api_name="compare_stop")
