"""Compare tab layout and wiring: the set-up form (data and shot pool with previews, grid axes,
scoring options), Start / Stop with live progress, and the results panel."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.models.loading import QUANTIZATIONS
from studio.services import Services
from studio.settings import Settings
from studio.ui.common.choices import model_choices, template_names
from studio.ui.common.live import LIVE_HEADERS
from studio.ui.common.stops import wire_stop
from studio.ui.compare.form import FORM_FIELDS
from studio.ui.compare.handlers import CompareHandlers
from studio.ui.compare.results import ResultsPanel, build_results_panel
from studio.ui.compare.views import IDLE, NO_POOL_NOTE

INTRO = (
    "Score every combination of **models × templates × shot counts × seeds** on the same "
    "examples; each row is stored the moment it is scored, with its exact prompt. Accuracy comes "
    "with a 95% bootstrap interval: overlapping intervals are not a difference. "
    "Same engine as `studio compare`."
)
FILE_TYPES = [".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".parquet"]
DEFAULT_LIMIT = 50
PRIVATE: dict[str, Any] = {"api_visibility": "private"}


@dataclass
class FilePicker:
    """A data file: its path, an upload button, and a preview of what it holds."""

    path: gr.Textbox
    upload: gr.UploadButton
    info: gr.Markdown
    table: gr.Dataframe


@dataclass
class TaskPicker:
    """An lm-evaluation-harness task file, its Load button and what loading it did."""

    path: gr.Textbox
    load: gr.Button
    info: gr.Markdown


@dataclass
class CompareForm:
    """The form's components; `fields` holds the inputs of Start by FORM_FIELDS name."""

    data: FilePicker
    pool: FilePicker
    pool_warning: gr.Markdown
    refresh_templates: gr.Button
    fields: dict[str, Any]
    task: TaskPicker

    @property
    def inputs(self) -> list[Any]:
        """The inputs of Start (and of the /compare API), in FORM_FIELDS order."""
        return [self.fields[name] for name in FORM_FIELDS]


@dataclass
class CompareTab:
    handlers: CompareHandlers
    form: CompareForm
    start: gr.Button
    stop: gr.Button
    status: gr.Markdown
    progress: gr.HTML
    live: gr.Dataframe
    results: ResultsPanel

    @property
    def run_outputs(self) -> list[Any]:
        """What Start and Resume fill (CompareHandlers.update), in order."""
        panel = self.results
        return [self.progress, self.live, self.status, self.start, *panel.outputs,
                *panel.cell_outputs, panel.past]  # fmt: skip


def _file_picker(label: str, placeholder: str, elem: str) -> FilePicker:
    with gr.Row(equal_height=True):
        path = gr.Textbox(
            label=label, placeholder=placeholder, scale=5, elem_id=f"compare-{elem}-path"
        )
        upload = gr.UploadButton(
            "Upload…", file_types=FILE_TYPES, size="sm", scale=0, min_width=100,
            elem_id=f"compare-{elem}-upload",
        )  # fmt: skip
    info = gr.Markdown("", elem_id=f"compare-{elem}-info")
    table = gr.Dataframe(
        interactive=False, max_height=190, visible=False, elem_id=f"compare-{elem}-preview"
    )
    return FilePicker(path, upload, info, table)


def _grid_axes(settings: Settings, f: dict[str, Any]) -> gr.Button:
    """Templates, models, shots, seeds and how to score: added to `f`; returns the ↻ button."""
    with gr.Row():
        f["templates"] = gr.Dropdown(
            template_names(settings), value=[], multiselect=True, allow_custom_value=True,
            label="Templates", info="From the library (or a .yaml path); ↻ re-reads it.",
            scale=5, elem_id="compare-templates",
        )  # fmt: skip
        refresh = gr.Button("↻", scale=0, min_width=44, elem_id="compare-templates-refresh")
        f["models"] = gr.Dropdown(
            model_choices(settings), value=[settings.default_model], multiselect=True,
            allow_custom_value=True, label="Models",
            info="Bundled alias, Hugging Face id or local folder.", scale=5,
            elem_id="compare-models",
        )  # fmt: skip
    with gr.Row():
        f["shots"] = gr.Textbox("0,5", label="Shots", info="e.g. 0,1,5", elem_id="compare-shots")
        f["seeds"] = gr.Textbox("0", label="Seeds", info="e.g. 1,2,3", elem_id="compare-seeds")
        f["limit"] = gr.Number(DEFAULT_LIMIT, label="Limit", info="first N examples; blank = all",
                               precision=0, minimum=1, elem_id="compare-limit")  # fmt: skip
        f["pool_size"] = gr.Number(100, label="Pool size", info="held out when no shot-pool file",
                                   precision=0, minimum=1, elem_id="compare-pool-size")  # fmt: skip
    with gr.Row():
        f["scoring"] = gr.Radio(
            ["loglik", "generate"], value="loglik", label="Scoring",
            info="loglik: the likeliest of the template's choices", elem_id="compare-scoring",
        )  # fmt: skip
        f["selection"] = gr.Radio(["first", "random", "balanced", "similar"], value="first",
                                  label="Shot selection", elem_id="compare-selection")  # fmt: skip
        f["quantization"] = gr.Radio(list(QUANTIZATIONS), value="none", label="Quantization")
    return refresh


def _advanced(f: dict[str, Any]) -> None:
    with gr.Accordion("Generation scoring and advanced settings", open=False):
        with gr.Row():
            f["metric"] = gr.Radio(
                ["exact", "contains", "regex", "f1", "rouge_l", "chrf", "bleu"],
                value="exact",
                label="Metric (generate)",
                elem_id="compare-metric",
            )
            f["regex"] = gr.Textbox(label="Regex (metric regex)", placeholder=r"^\s*positive")
            f["max_new_tokens"] = gr.Number(
                16, label="Max new tokens", precision=0, minimum=1,
                elem_id="compare-max-new-tokens",
            )  # fmt: skip
            f["temperature"] = gr.Slider(0, 2, value=0.0, step=0.05, label="Temperature")
        with gr.Row():
            f["batch_rows"] = gr.Number(16, label="Batch rows", precision=0, minimum=1)
            f["label_column"] = gr.Textbox(label="Label column", placeholder="for balanced")
            f["column_map"] = gr.Textbox(
                label="Column mapping",
                placeholder="variable=column, e.g. sentence=text",
                elem_id="compare-column-map",
            )
            f["name"] = gr.Textbox(label="Run name", placeholder="optional", elem_id="compare-name")
            f["calibrate"] = gr.Checkbox(
                False,
                label="Contextual calibration (loglik): also show accuracy with the label prior "
                "of content-free inputs divided out",
                elem_id="compare-calibrate",
            )


def judge_templates(settings: Settings) -> list[str]:
    """The library's judge templates (named judge-…); any other name or .yaml may be typed."""
    return [name for name in template_names(settings) if name.startswith("judge-")]


def _judging(settings: Settings, f: dict[str, Any]) -> None:
    """A judge grading the generated answers, and repeated sampling (both: scoring generate)."""
    with gr.Accordion("Judge and repeated sampling (generate)", open=False), gr.Row():
        f["judge"] = gr.Dropdown(
            model_choices(settings), value=None, allow_custom_value=True, label="Judge model",
            info="Any model spec, like Models; blank: no judge.", scale=3,
            elem_id="compare-judge",
        )  # fmt: skip
        f["judge_template"] = gr.Dropdown(
            judge_templates(settings), value=None, allow_custom_value=True,
            label="Judge template", info="judge-… from the library (or a .yaml path).", scale=3,
            elem_id="compare-judge-template",
        )  # fmt: skip
        f["judge_mode"] = gr.Radio(
            ["pointwise", "pairwise"], value="pointwise", label="Judge mode",
            info="pairwise: each configuration's answer against C1's, in both orders", scale=2,
            elem_id="compare-judge-mode",
        )  # fmt: skip
        f["samples"] = gr.Number(
            1, label="Samples", info="answers per example (needs temperature > 0)", precision=0,
            minimum=1, maximum=64, scale=1, elem_id="compare-samples",
        )  # fmt: skip


def _task_row() -> TaskPicker:
    """An lm-evaluation-harness task file that fills the form (data, template, shots)."""
    with gr.Row(equal_height=True):
        path = gr.Textbox(
            label="lm-evaluation-harness task (optional)",
            placeholder="path of a task .yaml with local data files; Load fills the form below",
            scale=5,
            elem_id="compare-task-path",
        )
        load = gr.Button("Load task", scale=0, min_width=120, elem_id="compare-task-load")
    return TaskPicker(path, load, gr.Markdown("", elem_id="compare-task-info"))


def _form(settings: Settings) -> CompareForm:
    task = _task_row()
    with gr.Row(equal_height=False):
        with gr.Column():
            data = _file_picker(
                "Evaluation data", "path of a CSV, TSV, JSONL, JSON or Parquet file", "data"
            )
        with gr.Column():
            pool = _file_picker(
                "Shot pool (optional)", "a separate file the shots come from", "pool"
            )
            warning = gr.Markdown(NO_POOL_NOTE, elem_id="compare-pool-warning")
    fields: dict[str, Any] = {"data": data.path, "shot_pool": pool.path}
    refresh = _grid_axes(settings, fields)
    _advanced(fields)
    _judging(settings, fields)
    return CompareForm(data, pool, warning, refresh, fields, task)


def _wire_form(form: CompareForm, h: CompareHandlers) -> None:
    """Previews on upload, Enter or leaving a path box; the same-file warning; refresh."""

    def previewer(role: str) -> Callable[[Any], tuple[Any, Any]]:
        return lambda path: h.preview(path, role)

    warn = (h.pool_note, [form.pool.path, form.data.path], form.pool_warning)
    for picker, role in ((form.data, "Data file"), (form.pool, "Shot-pool file")):
        show, outputs = previewer(role), [picker.info, picker.table]
        for trigger in (picker.path.submit, picker.path.blur):
            trigger(show, picker.path, outputs, **PRIVATE).then(*warn, **PRIVATE)
        picker.upload.upload(lambda file: file, picker.upload, picker.path, **PRIVATE).then(
            show, picker.path, outputs, **PRIVATE
        ).then(*warn, **PRIVATE)
    f = form.fields
    filled = [form.task.info, form.data.path, form.pool.path, f["templates"], f["shots"],
              f["selection"], f["scoring"]]  # fmt: skip
    form.task.load.click(h.load_task, form.task.path, filled, **PRIVATE).then(
        previewer("Data file"), form.data.path, [form.data.info, form.data.table], **PRIVATE
    ).then(*warn, **PRIVATE)
    settings = h.services.settings
    form.refresh_templates.click(
        lambda: (
            gr.Dropdown(choices=template_names(settings)),
            gr.Dropdown(choices=judge_templates(settings)),
        ),
        None,
        [form.fields["templates"], form.fields["judge_template"]],
        **PRIVATE,
    )


def _wire_results(panel: ResultsPanel, h: CompareHandlers) -> None:
    panel.past.select(h.open_run, panel.view, [*panel.outputs, *panel.cell_outputs], **PRIVATE)
    panel.refresh_past.click(lambda: h.past_runs(), None, panel.past, **PRIVATE)
    panel.view.change(h.refilter, [panel.run_id, panel.view], panel.grid_outputs, **PRIVATE)
    panel.grid.select(h.show_cell, panel.run_id, panel.cell_outputs, **PRIVATE)
    panel.run_id.change(h.references, panel.run_id, panel.reference, **PRIVATE)
    panel.reference.input(h.rereference, [panel.run_id, panel.reference], panel.summary, **PRIVATE)


def _wire_run(tab: CompareTab) -> None:
    h, panel, outputs = tab.handlers, tab.results, tab.run_outputs
    # One comparison at a time (Start or Resume, any session): they share the model and CPU.
    streaming: dict[str, Any] = {
        "show_progress": "hidden", "concurrency_id": "compare", "api_visibility": "private"
    }  # fmt: skip
    # Callable by API clients as /compare (undocumented: its inputs are the whole form).
    api = {**streaming, "api_name": "compare", "api_visibility": "undocumented"}
    tab.start.click(h.start_run, [panel.view, *tab.form.inputs], outputs, **api)
    panel.resume.click(h.resume_run, [panel.view, panel.run_id], outputs, **streaming)
    wire_stop(tab.stop, h.request_stop, tab.status, api_name="compare_stop")


def build_compare_tab(services: Services) -> CompareTab:
    h = CompareHandlers(services)
    gr.Markdown(INTRO, elem_classes=["cmp-hint"])
    form = _form(services.settings)
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
    tab = CompareTab(h, form, start, stop, status, progress, live, build_results_panel(h))
    _wire_form(form, h)
    _wire_results(tab.results, h)
    _wire_run(tab)
    return tab
