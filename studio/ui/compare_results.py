"""The results of one stored comparison run: summary, seed spread, chart, per-example grid, the
exact prompt of any cell; and the list of past runs that reopens any of them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from studio.compare.summary import seed_groups, summarize_run
from studio.services import Services
from studio.store.comparisons import RESUMABLE_STATUSES
from studio.store.records import ComparisonRun
from studio.ui.compare_chart import accuracy_chart_svg
from studio.ui.compare_views import (
    GRID_FILTERS,
    GRID_FIXED,
    PAST_RUN_HEADERS,
    SCORE_HEADERS,
    SEED_HEADERS,
    cell_markdown,
    choice_score_rows,
    config_tags,
    grid_position,
    grid_table,
    grid_widths,
    past_run_rows,
    run_markdown,
    seed_rows,
    summary_headers,
    summary_rows,
)

EMPTY_CHART = '<p class="cmp-empty">Start a run, or open a past one, to see its chart.</p>'


def load_run(services: Services, run_id: Any) -> ComparisonRun:
    run = services.store.get_comparison_run(int(run_id)) if run_id is not None else None
    if run is None:
        raise gr.Error(f"Comparison run #{run_id} is not in the store.")
    return run


def past_runs_table(services: Services) -> pd.DataFrame:
    rows = past_run_rows(services.store.list_comparison_runs(limit=100))
    return pd.DataFrame(rows, columns=PAST_RUN_HEADERS)


@dataclass
class ResultsPanel:
    services: Services
    run_id: gr.State
    info: gr.Markdown
    summary: gr.Dataframe
    seeds: gr.Dataframe
    chart: gr.HTML
    view: gr.Radio
    grid_note: gr.Markdown
    grid: gr.Dataframe
    cell_info: gr.Markdown
    prompt: gr.Code
    scores: gr.Dataframe
    output: gr.Textbox
    past: gr.Dataframe
    refresh_past: gr.Button
    resume: gr.Button

    @property
    def outputs(self) -> list[Any]:
        """What render() fills, in order."""
        return [
            self.run_id, self.info, self.resume, self.summary, self.seeds, self.chart,
            *self.grid_outputs,
        ]  # fmt: skip

    def unchanged(self, hide_resume: bool = False) -> tuple[Any, ...]:
        """Values for `outputs` that leave everything as it is (but may hide Resume)."""
        values: list[Any] = [gr.skip() for _ in self.outputs]
        if hide_resume:
            values[self.outputs.index(self.resume)] = gr.Button(visible=False)
        return tuple(values)

    @property
    def grid_outputs(self) -> list[Any]:
        return [self.grid, self.grid_note]

    @property
    def cell_outputs(self) -> list[Any]:
        return [self.cell_info, self.prompt, self.scores, self.output]

    def render(self, run_id: Any, view: str) -> tuple[Any, ...]:
        """Values for `outputs`: the run's header, tables, chart and grid."""
        run = load_run(self.services, run_id)
        summaries = summarize_run(self.services.store, run.id)
        headers = summary_headers(run.scoring)
        summary = pd.DataFrame(summary_rows(summaries, run.scoring), columns=headers)
        seeds = pd.DataFrame(seed_rows(seed_groups(summaries)), columns=SEED_HEADERS)
        return (
            run.id,
            run_markdown(run),
            gr.Button(visible=run.status in RESUMABLE_STATUSES),
            summary,
            gr.Dataframe(value=seeds, visible=not seeds.empty),
            accuracy_chart_svg(summaries, config_tags(run.configs)),
            *self.grid_values(run, view),
        )

    def grid_values(self, run: ComparisonRun, view: str) -> tuple[gr.Dataframe, str]:
        results = self.services.store.comparison_results(run.id)
        grid = grid_table(run, results, view or "all")
        frame = pd.DataFrame(grid.rows, columns=grid.headers)
        return gr.Dataframe(value=frame, column_widths=grid_widths(len(run.configs))), grid.note

    def show_cell(self, run_id: Any, evt: gr.SelectData) -> tuple[Any, ...]:
        run = load_run(self.services, run_id)
        row, column = evt.index if isinstance(evt.index, (list, tuple)) else (evt.index, 0)
        example = int((evt.row_value or [row])[0])
        position = grid_position(int(column), len(run.configs))
        config = run.configs[position]
        found = [
            r
            for r in self.services.store.comparison_results(run.id, config.id)
            if r.example_index == example
        ]
        if not found:
            missing = f"No result for example {example} in {config.label}: the run ended before it."
            return missing, "", gr.skip(), gr.skip()
        result = found[0]
        scores = pd.DataFrame(choice_score_rows(result), columns=SCORE_HEADERS)
        generated = result.output is not None
        return (
            cell_markdown(run, position, result),
            result.prompt_text,
            gr.Dataframe(value=scores, visible=not generated),
            gr.Textbox(value=result.output or "", visible=generated),
        )

    def clear_cell(self) -> tuple[Any, ...]:
        return ("Select a cell of the grid to see its exact prompt and scores.", "", None, "")

    def open_run(self, view: str, evt: gr.SelectData) -> tuple[Any, ...]:
        """A past run selected in the list: its results, and no cell selected."""
        run_id = (evt.row_value or [None])[0]
        return (*self.render(run_id, view), *self.clear_cell())

    def connect(self) -> None:
        def refilter(run_id: Any, view: str) -> tuple[Any, ...]:
            if run_id is None:
                return gr.skip(), gr.skip()
            return self.grid_values(load_run(self.services, run_id), view)

        private: dict[str, Any] = {"api_visibility": "private"}
        self.past.select(self.open_run, self.view, [*self.outputs, *self.cell_outputs], **private)
        self.refresh_past.click(lambda: past_runs_table(self.services), None, self.past, **private)
        self.view.change(refilter, [self.run_id, self.view], self.grid_outputs, **private)
        self.grid.select(self.show_cell, self.run_id, self.cell_outputs, **private)


def _past_runs(services: Services) -> tuple[gr.Dataframe, gr.Button]:
    with gr.Accordion("Past runs — select one to reopen its results", open=True):
        with gr.Row():
            gr.Markdown(
                "Every run is stored row by row: stopped and interrupted runs keep what finished.",
                elem_classes=["cmp-hint"],
            )
            refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100)
        table = gr.Dataframe(
            value=lambda: past_runs_table(services),
            headers=PAST_RUN_HEADERS,
            interactive=False,
            max_height=220,
            elem_id="compare-past-runs",
        )
    return table, refresh


def _cell_detail() -> tuple[gr.Markdown, gr.Code, gr.Dataframe, gr.Textbox]:
    cell_info = gr.Markdown(
        "Select a cell of the grid to see its exact prompt and scores.", elem_id="compare-cell-info"
    )
    with gr.Row(equal_height=False):
        prompt = gr.Code(
            label="Exact prompt text",
            language=None,
            lines=8,
            max_lines=30,
            wrap_lines=True,
            scale=3,
            elem_id="compare-cell-prompt",
        )
        with gr.Column(scale=2):
            scores = gr.Dataframe(
                headers=SCORE_HEADERS,
                label="Choice scores (log-likelihood)",
                interactive=False,
                elem_id="compare-cell-scores",
            )
            output = gr.Textbox(
                label="Generated output",
                lines=4,
                visible=False,
                interactive=False,
                elem_id="compare-cell-output",
            )
    return cell_info, prompt, scores, output


def build_results_panel(services: Services) -> ResultsPanel:
    past, refresh = _past_runs(services)
    run_id = gr.State(None)
    with gr.Row(equal_height=True):
        info = gr.Markdown("No run shown yet.", elem_id="compare-run-info")
        resume = gr.Button(
            "Resume this run", visible=False, scale=0, min_width=160, elem_id="compare-resume"
        )
    summary = gr.Dataframe(
        headers=summary_headers("loglik"),
        label="Summary — one row per configuration",
        interactive=False,
        wrap=True,
        max_height=320,
        elem_id="compare-summary",
    )
    seeds = gr.Dataframe(
        headers=SEED_HEADERS,
        label="Mean ± std over seeds",
        interactive=False,
        visible=False,
        elem_id="compare-seed-summary",
    )
    chart = gr.HTML(EMPTY_CHART, js_on_load=None, elem_id="compare-chart")
    with gr.Row(equal_height=True):
        view = gr.Radio(
            list(GRID_FILTERS),
            value="all",
            label="Examples",
            scale=2,
            info="disagreements: the configs predict differently; failures: any config is wrong",
            elem_id="compare-grid-filter",
        )
        grid_note = gr.Markdown("", elem_id="compare-grid-note")
    grid = gr.Dataframe(
        headers=GRID_FIXED,
        label="Side by side — one row per example (#), one column per configuration; "
        "select a cell for its exact prompt",
        interactive=False,
        wrap=True,
        max_height=420,
        elem_id="compare-grid",
    )
    panel = ResultsPanel(
        services,
        run_id,
        info,
        summary,
        seeds,
        chart,
        view,
        grid_note,
        grid,
        *_cell_detail(),
        past,
        refresh,
        resume,
    )
    panel.connect()
    return panel
