"""Tune tab layout and wiring: the set-up form (base model, data and format, adapter name, LoRA
and training), Check and Launch with the data report and the exact training strings, and the
jobs panel.

Every field starts at the TuneConfig default and carries the config's own description; the
values become a TuneConfig through tune/form.py, exactly as `studio tune` flags do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import gradio as gr

from studio.services import Services
from studio.settings import Settings
from studio.tuning.config import DataFormat, Quantization, Scheduler
from studio.ui.common.choices import model_choices, template_names
from studio.ui.tune.export import ExportPanel, build_export_panel
from studio.ui.tune.form import FORM_FIELDS, default, describe
from studio.ui.tune.handlers import TuneHandlers, without_adapters
from studio.ui.tune.jobs import SCROLL_LOG, JobsPanel, build_jobs_panel
from studio.ui.tune.views import EMPTY_PREVIEW, EMPTY_REPORT

INTRO = (
    "Train a **LoRA / QLoRA adapter** on a small base model, in the exact format of a prompt "
    "template (the one that won in Compare). **Check** shows the data report, the memory "
    "estimate and the exact training strings; **Launch** queues the run (one trains at a time, "
    "in its own process: closing the page does not stop it). Same engine as `studio tune`."
)
DEMO_NOTE = (
    "**Demo mode** (STUDIO_DEMO=1): training is switched off on this studio, so Check and "
    "Launch refuse. Run the studio on your own machine (`make run`) to tune adapters."
)
FILE_TYPES = [".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".parquet"]
NO_TEMPLATE = ("— none (alpaca / messages data) —", "")
PRIVATE: dict[str, Any] = {"api_visibility": "private"}


@dataclass
class TuneForm:
    fields: dict[str, Any]
    upload: gr.UploadButton
    refresh_templates: gr.Button

    @property
    def inputs(self) -> list[Any]:
        """The inputs of Check and Launch, in FORM_FIELDS order."""
        return [self.fields[name] for name in FORM_FIELDS]


@dataclass
class TuneTab:
    handlers: TuneHandlers
    form: TuneForm
    check: gr.Button
    launch: gr.Button
    status: gr.HTML
    report: gr.HTML
    preview: gr.HTML
    jobs: JobsPanel
    export: ExportPanel | None = None  # studio/ui/tune/export.py


def template_choices(settings: Settings) -> list[tuple[str, str]]:
    return [NO_TEMPLATE, *((name, name) for name in template_names(settings))]


def number(flat: str, label: str, value: Any = "default", **kw: Any) -> gr.Number:
    start = default(flat) if value == "default" else value
    info = kw.pop("info", None) or describe(flat)
    elem = f"tune-{flat.replace('_', '-')}"
    return gr.Number(start, label=label, info=info, elem_id=elem, **kw)


def switch(flat: str, label: str) -> gr.Checkbox:
    elem = f"tune-{flat.replace('_', '-')}"
    return gr.Checkbox(bool(default(flat)), label=label, info=describe(flat), elem_id=elem)


def _name_and_model(settings: Settings, f: dict[str, Any]) -> None:
    with gr.Row():
        f["name"] = gr.Textbox(label="Adapter name", placeholder="e.g. sst2-qlora", scale=3,
                               info="Written to adapters/NAME.", elem_id="tune-name")  # fmt: skip
        f["overwrite"] = gr.Checkbox(False, label="Overwrite", scale=1, elem_id="tune-overwrite",
                                     info="Replace an existing adapters/NAME.")  # fmt: skip
    with gr.Row():
        # Base models only: adapters cannot be trained on.
        f["model"] = gr.Dropdown(
            model_choices(settings, str(default("model")), adapters=False),
            value=default("model"), scale=3, allow_custom_value=True, label="Base model",
            info=describe("model"), elem_id="tune-model",
        )  # fmt: skip
        f["quantization"] = gr.Radio(list(get_args(Quantization)), value=default("quantization"),
                                     label="Quantization", info="4bit = QLoRA (NF4)", scale=2,
                                     elem_id="tune-quantization")  # fmt: skip


def _data_and_template(settings: Settings, f: dict[str, Any]) -> tuple[gr.UploadButton, gr.Button]:
    """The training data, its format and template: added to `f`; returns (upload, ↻)."""
    with gr.Row(equal_height=True):
        f["data"] = gr.Textbox(
            label="Training data", scale=5, elem_id="tune-data",
            placeholder="path of a CSV, TSV, JSONL, JSON or Parquet file",
        )  # fmt: skip
        upload = gr.UploadButton("Upload…", file_types=FILE_TYPES, size="sm", scale=0,
                                 min_width=100, elem_id="tune-data-upload")  # fmt: skip
    with gr.Row():
        f["limit"] = number(
            "limit", "Use first N rows", None, precision=0, info="blank or 0 = all rows"
        )
        f["format"] = gr.Radio(list(get_args(DataFormat)), value=default("format"), scale=2,
                               label="Format", elem_id="tune-format",
                               info="auto: messages/alpaca columns, else the template")  # fmt: skip
    with gr.Row(equal_height=True):
        f["template"] = gr.Dropdown(
            template_choices(settings), value="", allow_custom_value=True,
            label="Template (training format)", scale=5,
            info="The template that won in Compare; or a .yaml path.", elem_id="tune-template",
        )  # fmt: skip
        refresh = gr.Button("↻", scale=0, min_width=44, elem_id="tune-templates-refresh")
    f["column_map"] = gr.Textbox(label="Column map", lines=2, elem_id="tune-column-map",
                                 placeholder="VARIABLE=COLUMN, one per line (e.g. sentence=text)",
                                 info=describe("column_map"))  # fmt: skip
    return upload, refresh


def _lora(f: dict[str, Any]) -> None:
    with gr.Accordion("LoRA", open=False, elem_id="tune-lora"):
        with gr.Row():
            f["lora_r"] = number("lora_r", "Rank r", precision=0)
            f["lora_alpha"] = number("lora_alpha", "Alpha", precision=0)
            f["lora_dropout"] = number("lora_dropout", "Dropout", step=0.01)
        f["target_modules"] = gr.Textbox(
            str(default("target_modules")),
            label="Target modules",
            info="all-linear, or module names separated by commas (q_proj, v_proj)",
            elem_id="tune-target-modules",
        )
        with gr.Row():
            f["use_rslora"] = switch("use_rslora", "rsLoRA")
            f["use_dora"] = switch("use_dora", "DoRA")


def _training(f: dict[str, Any]) -> None:
    with gr.Accordion("Training", open=True, elem_id="tune-training"):
        with gr.Row():
            f["lr"] = number("lr", "Learning rate", step=1e-5)
            f["epochs"] = number("epochs", "Epochs", step=0.5)
            f["max_steps"] = number(
                "max_steps", "Max steps", precision=0, info="blank or 0 = use the epochs"
            )
        with gr.Row():
            f["batch_size"] = number("batch_size", "Batch size", precision=0)
            f["grad_accumulation"] = number("grad_accumulation", "Grad accumulation", precision=0)
            f["max_length"] = number("max_length", "Max length", precision=0)
        with gr.Row():
            f["eval_split"] = number("eval_split", "Eval split", step=0.05)
            f["eval_steps"] = number("eval_steps", "Eval steps", precision=0,
                                     info="blank or 0 = about 10 evals per run")  # fmt: skip
            f["save_steps"] = number("save_steps", "Save steps", precision=0)
    with gr.Accordion("Schedule, seed and memory", open=False, elem_id="tune-advanced"):
        with gr.Row():
            f["scheduler"] = gr.Dropdown(list(get_args(Scheduler)), value=default("scheduler"),
                                         label="Scheduler", elem_id="tune-scheduler")  # fmt: skip
            f["warmup_ratio"] = number("warmup_ratio", "Warmup ratio", step=0.01)
            f["seed"] = number("seed", "Seed", precision=0)
        with gr.Row():
            f["packing"] = switch("packing", "Packing")
            f["padding_free"] = switch("padding_free", "Padding-free")
            f["gradient_checkpointing"] = switch("gradient_checkpointing", "Gradient checkpointing")
            f["prompt_loss"] = gr.Checkbox(
                False, label="Loss on the prompt too", elem_id="tune-prompt-loss",
                info="Off: only the answer is trained (the prompt is masked).",
            )  # fmt: skip


def _form(settings: Settings) -> TuneForm:
    fields: dict[str, Any] = {}
    _name_and_model(settings, fields)
    upload, refresh = _data_and_template(settings, fields)
    _lora(fields)
    _training(fields)
    return TuneForm(fields, upload, refresh)


def _clicked_run(evt: gr.SelectData) -> Any:
    """The run of the jobs table's clicked row."""
    row = evt.row_value or []
    return int(row[0]) if row else gr.skip()


def _forget_adapters(cache: dict[str, str] | None) -> dict[str, str]:
    return without_adapters(cache)


def _wire_jobs(panel: JobsPanel, h: TuneHandlers) -> None:
    private: dict[str, Any] = {**PRIVATE, "show_progress": "hidden"}
    follow = (h.refresh, [panel.run, panel.cache], panel.outputs)
    panel.timer.tick(*follow, **private)
    panel.run.input(*follow, **private)
    panel.table.select(_clicked_run, None, panel.run, **private).then(*follow, **private)
    panel.stop.click(h.request_stop, panel.run, panel.notice, **private).then(*follow, **private)
    panel.resume.click(h.request_resume, panel.run, panel.notice, **private).then(
        *follow, **private
    )
    panel.log.change(None, None, None, js=SCROLL_LOG, **private)
    panel.refresh_adapters.click(_forget_adapters, panel.cache, panel.cache, **private).then(
        *follow, **private
    )


def _wire(tab: TuneTab) -> None:
    h, form, jobs = tab.handlers, tab.form, tab.jobs
    form.upload.upload(lambda file: file, form.upload, form.fields["data"], **PRIVATE)
    form.refresh_templates.click(
        lambda: gr.Dropdown(choices=template_choices(h.services.settings)),
        None,
        form.fields["template"],
        **PRIVATE,
    )
    _wire_jobs(jobs, h)
    # One check or launch at a time: each loads a tokenizer, and two launches must not race.
    options: dict[str, Any] = {"concurrency_id": "tune-check", "api_visibility": "private"}
    checked = [tab.status, tab.report, tab.preview]
    tab.check.click(h.check, form.inputs, checked, **options)
    # Callable by API clients as /tune_launch (undocumented: its inputs are the whole form).
    api = {**options, "api_name": "tune_launch", "api_visibility": "undocumented"}
    tab.launch.click(h.launch, form.inputs, [*checked, jobs.run], **api).then(
        h.refresh, [jobs.run, jobs.cache], jobs.outputs, **PRIVATE
    )


def build_tune_tab(services: Services) -> TuneTab:
    gr.Markdown(INTRO, elem_classes=["cmp-hint"])
    if services.settings.demo:
        gr.Markdown(DEMO_NOTE, elem_id="tune-demo")
    with gr.Row(equal_height=False):
        with gr.Column(scale=5):
            form = _form(services.settings)
            with gr.Row():
                check = gr.Button("Check", scale=1, elem_id="tune-check")
                launch = gr.Button("Launch", variant="primary", scale=2, elem_id="tune-launch")
            status = gr.HTML("", js_on_load=None, elem_id="tune-status")
        with gr.Column(scale=6):
            report = gr.HTML(EMPTY_REPORT, js_on_load=None, elem_id="tune-report")
            with gr.Accordion("Exact training strings (first rows)", open=True):
                preview = gr.HTML(EMPTY_PREVIEW, js_on_load=None, elem_id="tune-preview")
    jobs = build_jobs_panel()
    export = build_export_panel(services)
    tab = TuneTab(
        TuneHandlers(services), form, check, launch, status, report, preview, jobs, export
    )
    _wire(tab)
    return tab
