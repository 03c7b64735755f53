"""The Compare tab's results panel: past runs, one run's summary, seed spread, chart, per-example
grid and the exact prompt of any cell. Components only: CompareHandlers fills them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.ui.compare.handlers import CompareHandlers
from studio.ui.compare.views import (
    EMPTY_CHART,
    GRID_FILTERS,
    GRID_FIXED,
    PAST_RUN_HEADERS,
    SCORE_HEADERS,
    SEED_HEADERS,
    SELECT_A_CELL,
    summary_headers,
)


@dataclass
class ResultsPanel:
    run_id: gr.State
    info: gr.Markdown
    summary: gr.Dataframe
    reference: gr.Dropdown
    seeds: gr.Dataframe
    chart: gr.HTML
    view: gr.Radio
    grid_note: gr.Markdown
    grid: gr.Dataframe
    cell_info: gr.Markdown
    prompt: gr.Code
    scores: gr.Dataframe
    output: gr.Textbox
    judge: gr.Textbox
    past: gr.Dataframe
    refresh_past: gr.Button
    resume: gr.Button

    @property
    def outputs(self) -> list[Any]:
        """What CompareHandlers.render fills, in order."""
        return [
            self.run_id, self.info, self.resume, self.summary, self.seeds, self.chart,
            *self.grid_outputs,
        ]  # fmt: skip

    @property
    def grid_outputs(self) -> list[Any]:
        return [self.grid, self.grid_note]

    @property
    def cell_outputs(self) -> list[Any]:
        """What CompareHandlers.show_cell fills, in order."""
        return [self.cell_info, self.prompt, self.scores, self.output, self.judge]


def _past_runs(handlers: CompareHandlers) -> tuple[gr.Dataframe, gr.Button]:
    with gr.Accordion("Past runs — select one to reopen its results", open=True):
        with gr.Row():
            gr.Markdown(
                "Every run is stored row by row: stopped and interrupted runs keep what finished.",
                elem_classes=["cmp-hint"],
            )
            refresh = gr.Button("Refresh", size="sm", scale=0, min_width=100)
        table = gr.Dataframe(
            value=lambda: handlers.past_runs(),
            headers=PAST_RUN_HEADERS,
            interactive=False,
            max_height=220,
            elem_id="compare-past-runs",
        )
    return table, refresh


def _cell_detail() -> tuple[gr.Markdown, gr.Code, gr.Dataframe, gr.Textbox, gr.Textbox]:
    cell_info = gr.Markdown(SELECT_A_CELL, elem_id="compare-cell-info")
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
    judge = gr.Textbox(
        label="Judge: its exact prompt(s), verdict and scores (pairwise: both orders)",
        lines=10,
        max_lines=40,
        interactive=False,
        visible=False,
        elem_id="compare-cell-judge",
    )
    return cell_info, prompt, scores, output, judge


def _grid() -> tuple[gr.Radio, gr.Markdown, gr.Dataframe]:
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
    return view, grid_note, grid


def build_results_panel(handlers: CompareHandlers) -> ResultsPanel:
    past, refresh = _past_runs(handlers)
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
    reference = gr.Dropdown(
        choices=["C1"],
        value="C1",
        label="Reference — the Δ and p columns compare every configuration with it on the same "
        "examples (paired bootstrap CI; McNemar's exact test, Holm-adjusted for several)",
        interactive=True,
        elem_id="compare-reference",
    )
    seeds = gr.Dataframe(
        headers=SEED_HEADERS,
        label="Mean ± std over seeds",
        interactive=False,
        visible=False,
        elem_id="compare-seed-summary",
    )
    chart = gr.HTML(EMPTY_CHART, js_on_load=None, elem_id="compare-chart")
    view, grid_note, grid = _grid()
    cell = _cell_detail()
    return ResultsPanel(
        run_id,
        info,
        summary,
        reference,
        seeds,
        chart,
        view,
        grid_note,
        grid,
        *cell,
        past,
        refresh,
        resume,
    )
