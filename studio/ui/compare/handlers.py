"""Compare tab handlers: run a grid (or resume one) through services.comparisons and follow it;
read a stored run back (summary, seeds, chart, per-example grid, one cell's exact prompt).

The tab builds the same CompareConfig as `studio compare` and runs it through the same engine,
which validates everything before storing and stores every row as it is scored; the handlers
only parse the form, pace the updates and format what the store holds. Each returns values for
the outputs its docstring names, in that order.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import gradio as gr
import pandas as pd

from studio.compare.config import CompareConfig
from studio.compare.engine import CellStarted, Event, JudgeStarted, RunFinished, RunStarted
from studio.compare.summary import (
    ConfigSummary,
    judge_summaries,
    paired_summaries,
    sampling_summaries,
    seed_groups,
    summarize_run,
)
from studio.compare.tasks import load_task
from studio.datasets import DatasetError, load_dataset
from studio.hosting import PolicyRefusal
from studio.models.errors import ModelError
from studio.services import Services
from studio.store import StoreError
from studio.store.comparisons import RESUMABLE_STATUSES
from studio.store.records import ComparisonRun
from studio.ui.common.choices import template_names
from studio.ui.common.errors import user_error
from studio.ui.common.live import STOPPING, LiveRun, follow, live_frame
from studio.ui.common.stops import StopRegistry
from studio.ui.compare import views
from studio.ui.compare.chart import accuracy_chart_svg
from studio.ui.compare.form import compare_config, same_file, text

SKIP: Any = gr.skip()
RESULTS = 8  # values of `render`: run id, header, Resume, summary, seeds, chart, grid, grid note
RESUME_AT = 2
CELL = 5  # values of `show_cell`: cell header, prompt, choice scores, generated output, judge


class CompareHandlers:
    """One per app; Start and Resume are generators following the engine's events."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.stops = StopRegistry()

    # --- the form -----------------------------------------------------------------------------

    def config(self, values: tuple[Any, ...]) -> CompareConfig:
        """A CompareConfig from the form's values (FORM_FIELDS order); a bad value is a gr.Error."""
        try:
            return compare_config(values)
        except ValueError as exc:  # CompareConfigError, or a value the form could not read
            raise user_error(exc) from None

    def load_task(self, path: Any) -> tuple[Any, ...]:
        """(task note, data path, shot-pool path, templates, shots, selection, scoring) filled in
        from an lm-evaluation-harness task file; its template is saved to the library first."""
        where = text(path)
        if where is None:
            raise gr.Error("Give the path of an lm-evaluation-harness task file (.yaml).")
        try:
            task = load_task(where, self.services.policy)
            saved = self.services.templates.save(task.template.to_yaml())
        except (ValueError, OSError, StoreError) as exc:  # TaskError, PolicyRefusal, TemplateError
            raise user_error(exc) from None
        names = template_names(self.services.settings)
        return (
            views.task_markdown(task, saved.message),
            str(task.data),
            str(task.shot_pool or ""),
            gr.Dropdown(choices=names, value=[task.template.name], multiselect=True),
            str(task.shots),
            task.selection,
            "loglik",
        )

    def preview(self, path: Any, role: str) -> tuple[Any, Any]:
        """(data info, preview table) of the data set at `path`; hidden when the path is blank."""
        where = text(path)
        if where is None:
            return "", gr.Dataframe(value=None, visible=False)
        try:
            dataset = load_dataset(where, policy=self.services.policy)
        except (DatasetError, PolicyRefusal) as exc:
            raise gr.Error(f"{role}: {exc}") from None
        rows = views.preview_rows(dataset, width=views.PREVIEW_CHARS)
        table = pd.DataFrame(rows, columns=dataset.columns)
        return views.dataset_markdown(dataset), gr.Dataframe(value=table, visible=True)

    def pool_note(self, pool: Any, data: Any) -> str:
        return views.pool_note(text(pool) is None, same_file(pool, data))

    # --- running a grid -----------------------------------------------------------------------

    def start_run(self, request: gr.Request, view: str, *values: Any) -> Iterator[tuple[Any, ...]]:
        """Values for the run outputs (see `update`) as the new run goes."""
        config = self.config(values)
        yield from self._follow(
            request,
            view,
            config.n_configs,
            lambda stop: self.services.comparisons.run(config, stop),
        )

    def resume_run(self, request: gr.Request, view: str, run_id: Any) -> Iterator[tuple[Any, ...]]:
        """Finish a stopped, interrupted or failed run: only its missing rows are scored."""
        run = self.load_run(run_id)
        yield from self._follow(
            request,
            view,
            len(run.configs),
            lambda stop: self.services.comparisons.resume(run.id, stop),
        )

    def request_stop(self, request: gr.Request) -> str:
        return STOPPING if self.stops.stop(request.session_hash) else views.NOTHING_RUNNING

    def update(
        self,
        progress: str,
        live: LiveRun | None,
        status: Any = SKIP,
        running: bool | None = None,
        results: tuple[Any, ...] | None = None,
        past: Any = SKIP,
    ) -> tuple[Any, ...]:
        """(progress, live rows, status, Start, *render values, *cell values, past runs);
        gr.skip() for whatever is not given."""
        start = SKIP if running is None else gr.Button(interactive=not running)
        results = results or self.unchanged(hide_resume=bool(running))
        cells = self.clear_cell() if running else tuple(gr.skip() for _ in range(CELL))
        return (progress, live_frame(live), status, start, *results, *cells, past)

    def _follow(
        self,
        request: gr.Request,
        view: str,
        n_cells: int,
        events: Callable[[threading.Event], Iterator[Event]],
    ) -> Iterator[tuple[Any, ...]]:
        live = LiveRun(n_cells)
        yield self.update(views.PREPARING, None, "", running=True)
        with self.stops.running(request.session_hash) as stop:
            try:
                for event in follow(events(stop), live, stop):
                    yield self._on(event, live, view)
            except Exception as exc:
                if live.run_id is None:  # refused before anything was stored
                    yield self.update(views.IDLE, None, "", running=False)
                if isinstance(exc, (ModelError, StoreError, ValueError)):
                    raise user_error(exc) from None
                raise

    def _on(self, event: Event, live: LiveRun, view: str) -> tuple[Any, ...]:
        if isinstance(event, RunStarted):
            live.tags = views.config_tags(self.load_run(event.run_id).configs)
        if isinstance(event, RunFinished):
            judged = (live.judged, live.judge_total) if live.judge_total is not None else None
            status = views.final_status(
                event.status, event.run_id, live.done, live.total, event.error, judged
            )
            results = self.render(event.run_id, view)
            return self.update(live.progress_html(), live, status, False, results, self.past_runs())
        cell_done = isinstance(event, CellStarted) and event.position > 0
        if (cell_done or isinstance(event, JudgeStarted)) and live.run_id is not None:
            # A cell is complete (or all are, and the judge starts): show the results so far.
            return self.update(live.progress_html(), live, results=self.render(live.run_id, view))
        return self.update(live.progress_html(), live)

    # --- a stored run -------------------------------------------------------------------------

    def load_run(self, run_id: Any) -> ComparisonRun:
        run = self.services.store.get_comparison_run(int(run_id)) if run_id is not None else None
        if run is None:
            raise gr.Error(f"Comparison run #{run_id} is not in the store.")
        return run

    def past_runs(self) -> pd.DataFrame:
        rows = views.past_run_rows(self.services.store.list_comparison_runs(limit=100))
        return pd.DataFrame(rows, columns=views.PAST_RUN_HEADERS)

    def render(self, run_id: Any, view: str) -> tuple[Any, ...]:
        """(run id, header, Resume, summary, seeds, chart, grid, grid note) of a stored run."""
        run = self.load_run(run_id)
        summaries = summarize_run(self.services.store, run.id)
        summary = self.summary_table(run, summaries, 1)
        seeds = pd.DataFrame(views.seed_rows(seed_groups(summaries)), columns=views.SEED_HEADERS)
        return (
            run.id,
            views.run_markdown(run),
            gr.Button(visible=run.status in RESUMABLE_STATUSES),
            summary,
            gr.Dataframe(value=seeds, visible=not seeds.empty),
            accuracy_chart_svg(summaries, views.config_tags(run.configs)),
            *self.grid_values(run, view),
        )

    def summary_table(
        self, run: ComparisonRun, summaries: list[ConfigSummary], reference: int
    ) -> pd.DataFrame:
        """The summary, each configuration paired with configuration `reference` (1-based)."""
        store = self.services.store
        paired = paired_summaries(store, run.id, reference)
        calibrated = any(s.calibrated for s in summaries)
        extras = views.run_extras(
            run, judge_summaries(store, run.id), sampling_summaries(store, run.id)
        )
        headers = views.summary_headers(run.scoring, reference, calibrated, extras)
        rows = views.summary_rows(summaries, run.scoring, paired, extras)
        return pd.DataFrame(rows, columns=headers)

    def references(self, run_id: Any) -> gr.Dropdown:
        """The reference picker for a newly shown run: its configurations, C1 chosen."""
        if run_id is None:
            return gr.Dropdown(choices=["C1"], value="C1")
        configs = self.load_run(run_id).configs
        return gr.Dropdown(choices=[f"C{n}" for n in range(1, len(configs) + 1)], value="C1")

    def rereference(self, run_id: Any, reference: Any) -> Any:
        """The summary again, paired with the chosen reference configuration ("C2" → 2)."""
        if run_id is None:
            return SKIP
        run = self.load_run(run_id)
        chosen = int(str(reference or "C1").removeprefix("C"))
        if not 1 <= chosen <= len(run.configs):
            raise gr.Error(f"Run #{run.id} has configurations C1 to C{len(run.configs)}.")
        return self.summary_table(run, summarize_run(self.services.store, run.id), chosen)

    def unchanged(self, hide_resume: bool = False) -> tuple[Any, ...]:
        """Values for `render`'s outputs that leave everything as it is (but may hide Resume)."""
        values: list[Any] = [gr.skip() for _ in range(RESULTS)]
        if hide_resume:
            values[RESUME_AT] = gr.Button(visible=False)
        return tuple(values)

    def grid_values(self, run: ComparisonRun, view: str) -> tuple[gr.Dataframe, str]:
        """(grid, grid note) of the examples `view` keeps."""
        results = self.services.store.comparison_results(run.id)
        grid = views.grid_table(run, results, view or "all")
        frame = pd.DataFrame(grid.rows, columns=grid.headers)
        widths = views.grid_widths(len(run.configs))
        return gr.Dataframe(value=frame, column_widths=widths), grid.note

    def refilter(self, run_id: Any, view: str) -> tuple[Any, ...]:
        if run_id is None:
            return gr.skip(), gr.skip()
        return self.grid_values(self.load_run(run_id), view)

    def show_cell(self, run_id: Any, evt: gr.SelectData) -> tuple[Any, ...]:
        """(cell header, exact prompt, choice scores, generated output, judge) of a clicked grid
        cell; the judge's prompts and verdicts show only for a judged cell."""
        run = self.load_run(run_id)
        row, column = evt.index if isinstance(evt.index, (list, tuple)) else (evt.index, 0)
        example = int((evt.row_value or [row])[0])
        position = views.grid_position(int(column), len(run.configs))
        config = run.configs[position]
        found = [
            r
            for r in self.services.store.comparison_results(run.id, config.id)
            if r.example_index == example
        ]
        if not found:
            missing = f"No result for example {example} in {config.label}: the run ended before it."
            return missing, "", gr.skip(), gr.skip(), gr.Textbox(value="", visible=False)
        result = found[0]
        scores = pd.DataFrame(views.choice_score_rows(result), columns=views.SCORE_HEADERS)
        generated = result.output is not None
        judge = views.judge_text(result.judgement, int(run.config.get("reference") or 1))
        return (
            views.cell_markdown(run, position, result),
            result.prompt_text,
            gr.Dataframe(value=scores, visible=not generated),
            gr.Textbox(value=views.output_text(result), visible=generated),
            gr.Textbox(value=judge, visible=bool(judge)),
        )

    def clear_cell(self) -> tuple[Any, ...]:
        return (views.SELECT_A_CELL, "", None, "", gr.Textbox(value="", visible=False))

    def open_run(self, view: str, evt: gr.SelectData) -> tuple[Any, ...]:
        """A past run selected in the list: its results, and no cell selected."""
        run_id = (evt.row_value or [None])[0]
        return (*self.render(run_id, view), *self.clear_cell())
