"""Data tab layout and wiring: preference pairs from a generation run (by its metric or its
judge), reviewed row by row (keep, swap) and saved as a numbered dataset version; the list of
datasets the studio has written."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services import Services
from studio.ui.common.choices import model_choices
from studio.ui.common.stops import wire_stop
from studio.ui.data.handlers import DataHandlers
from studio.ui.data.views import (
    CANDIDATE_COLUMNS,
    CANDIDATE_TYPES,
    PAIR_COLUMNS,
    PAIR_TYPES,
    VERSION_COLUMNS,
)

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
    _synthetic_section(services, h, versions)
    refresh.click(h.runs, None, run, **PRIVATE)
    run.focus(h.runs, None, run, **PRIVATE)
    run.change(h.rules, run, rule, **PRIVATE)
    build.click(h.build, [run, rule, margin], [review, note], api_name="data_pairs")
    save.click(h.save, [run, rule, margin, review, name], [saved, versions], api_name="data_save")
    return h


def _synthetic_section(services: Services, h: DataHandlers, versions: gr.Dataframe) -> None:
    """Synthetic instructions from seed tasks: generate (stoppable, resumable), review, save."""
    settings = services.settings
    with gr.Accordion("Synthetic instruction data (Self-Instruct)", open=False):
        gr.Markdown(
            "A generator model writes new instructions and instances from seed tasks; "
            "near-duplicates (ROUGE-L above 0.7 to the pool) and the usual bad cases are "
            "filtered out, each with its reason. Generate again to continue a stopped job. "
            "Review (untick *keep*, edit the text), then save."
        )
        with gr.Row():
            seeds = gr.Textbox(
                "studio/samples/seed-tasks.jsonl", label="Seed tasks (JSONL)",
                elem_id="data-seed-tasks", scale=3,
            )  # fmt: skip
            model = gr.Dropdown(
                model_choices(settings), value=settings.default_model, label="Generator",
                allow_custom_value=True, elem_id="data-generator", scale=2,
            )  # fmt: skip
            count = gr.Number(20, label="Accepted to reach", precision=0, minimum=1)
            max_new = gr.Number(96, label="Max new tokens", precision=0, minimum=8)
        with gr.Row():
            name = gr.Textbox(label="Dataset name", placeholder="e.g. support-synthetic",
                              elem_id="data-synthetic-name")  # fmt: skip
            generate = gr.Button("Generate", variant="primary", elem_id="data-generate")
            stop = gr.Button("Stop", variant="stop", elem_id="data-generate-stop")
            load = gr.Button("Load candidates", elem_id="data-candidates-load")
        status = gr.Markdown("", elem_id="data-generate-status")
        review = gr.Dataframe(
            headers=CANDIDATE_COLUMNS, datatype=CANDIDATE_TYPES, interactive=True, wrap=True,
            label="Candidates to review", elem_id="data-candidates",
        )  # fmt: skip
        save = gr.Button("Save as dataset", variant="primary", elem_id="data-synthetic-save")
        saved = gr.Markdown("", elem_id="data-synthetic-saved")
    generate.click(
        h.generate, [seeds, model, count, max_new, name], [status, review],
        api_name="data_generate",
    )  # fmt: skip
    wire_stop(stop, h.stop_generation, None, **PRIVATE)
    load.click(h.candidates, name, [status, review], **PRIVATE)
    save.click(h.save_generated, [name, review], [saved, versions], api_name="data_generate_save")
