"""Data tab layout and wiring: preference pairs from a generation run (by its metric or its
judge), reviewed row by row (keep, swap) and saved as a numbered dataset version; the list of
datasets the studio has written."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services import Services
from studio.ui.data.handlers import DataHandlers
from studio.ui.data.views import PAIR_COLUMNS, PAIR_TYPES, VERSION_COLUMNS

PRIVATE: dict[str, Any] = {"api_visibility": "private"}


def build_data_tab(services: Services) -> DataHandlers:
    h = DataHandlers(services)
    gr.Markdown(
        "Build **preference pairs** from a generation run: with repeated sampling, each "
        "configuration's best sample against its worst by the run's metric; with several "
        "configurations, the best answer against the worst; with a judge, its verdicts "
        "(a pairwise judge's wins and losses that hold in both orders). Review, then save: the "
        "rule and your edits are kept as the dataset's lineage."
    )
    with gr.Row():
        run = gr.Dropdown(
            [], label="Generation run", elem_id="data-run", scale=3, allow_custom_value=True,
            info="Pick one, or type its id (c7)",
        )  # fmt: skip
        refresh = gr.Button("↻", scale=0, min_width=40)
        rule = gr.Dropdown(
            [], label="Pairs by", elem_id="data-rule", scale=1, allow_custom_value=True
        )
        margin = gr.Number(0.0, label="Margin (scores must differ by more)", scale=1)
        build = gr.Button("Build pairs", variant="primary", elem_id="data-build", scale=1)
    note = gr.Markdown("", elem_id="data-note")
    review = gr.Dataframe(
        headers=PAIR_COLUMNS,
        datatype=PAIR_TYPES,
        interactive=True,
        wrap=True,
        label="Pairs to review",
        elem_id="data-pairs",
    )
    with gr.Row():
        name = gr.Textbox(
            label="Dataset name", placeholder="e.g. tickets-pairs", elem_id="data-name"
        )
        save = gr.Button("Save as dataset", variant="primary", elem_id="data-save")
    saved = gr.Markdown("", elem_id="data-saved")
    versions = gr.Dataframe(
        value=h.versions,
        headers=VERSION_COLUMNS,
        interactive=False,
        label="Written datasets (newest first)",
        elem_id="data-versions",
    )
    refresh.click(h.runs, None, run, **PRIVATE)
    run.focus(h.runs, None, run, **PRIVATE)
    run.change(h.rules, run, rule, **PRIVATE)
    build.click(h.build, [run, rule, margin], [review, note], api_name="data_pairs")
    save.click(h.save, [run, rule, margin, review, name], [saved, versions], api_name="data_save")
    return h
