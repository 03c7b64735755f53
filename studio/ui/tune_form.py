"""The Tune tab's set-up form: base model, data and format, adapter name, LoRA and training.

Every field starts at the TuneConfig default and carries the config's own description; the
values become a TuneConfig through studio.ui.tune_values, exactly as `studio tune` flags do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, get_args

import gradio as gr

from studio.models.catalog import list_models
from studio.services import Services
from studio.templates import TemplateError, list_templates
from studio.tuning.config import DataFormat, Quantization, Scheduler
from studio.ui.compare_setup import FILE_TYPES
from studio.ui.tune_values import FORM_FIELDS, default, describe

NO_TEMPLATE = ("— none (alpaca / messages data) —", "")


def base_models(services: Services) -> list[str]:
    """Bundled and cached base models (adapters cannot be trained on)."""
    settings = services.settings
    found = [e.spec for e in list_models(settings.models_dir) if e.usable]
    first = str(default("model"))
    return found if first in found else [first, *found]


def template_choices() -> list[tuple[str, str]]:
    try:
        names = [t.name for t in list_templates()]
    except TemplateError as exc:
        gr.Warning(str(exc))
        names = []
    return [NO_TEMPLATE, *((name, name) for name in names)]


def number(flat: str, label: str, value: Any = "default", **kw: Any) -> gr.Number:
    start = default(flat) if value == "default" else value
    info = kw.pop("info", None) or describe(flat)
    elem = f"tune-{flat.replace('_', '-')}"
    return gr.Number(start, label=label, info=info, elem_id=elem, **kw)


def switch(flat: str, label: str) -> gr.Checkbox:
    elem = f"tune-{flat.replace('_', '-')}"
    return gr.Checkbox(bool(default(flat)), label=label, info=describe(flat), elem_id=elem)


@dataclass
class TuneForm:
    fields: dict[str, Any]
    upload: gr.UploadButton
    refresh_templates: gr.Button

    @property
    def inputs(self) -> list[Any]:
        """The inputs of Check and Launch, in FORM_FIELDS order."""
        return [self.fields[name] for name in FORM_FIELDS]

    def connect(self) -> None:
        private: dict[str, Any] = {"api_visibility": "private"}
        self.upload.upload(lambda file: file, self.upload, self.fields["data"], **private)
        self.refresh_templates.click(
            lambda: gr.Dropdown(choices=template_choices()),
            None,
            self.fields["template"],
            **private,
        )


def _model_and_data(services: Services, f: dict[str, Any]) -> tuple[Any, Any]:
    with gr.Row():
        f["name"] = gr.Textbox(
            label="Adapter name",
            placeholder="e.g. sst2-qlora",
            scale=3,
            info="Written to adapters/NAME.",
            elem_id="tune-name",
        )
        f["overwrite"] = gr.Checkbox(
            False,
            label="Overwrite",
            scale=1,
            elem_id="tune-overwrite",
            info="Replace an existing adapters/NAME.",
        )
    with gr.Row():
        f["model"] = gr.Dropdown(
            base_models(services),
            value=default("model"),
            scale=3,
            allow_custom_value=True,
            label="Base model",
            info=describe("model"),
            elem_id="tune-model",
        )
        f["quantization"] = gr.Radio(
            list(get_args(Quantization)),
            value=default("quantization"),
            label="Quantization",
            info="4bit = QLoRA (NF4)",
            scale=2,
            elem_id="tune-quantization",
        )
    with gr.Row(equal_height=True):
        f["data"] = gr.Textbox(
            label="Training data",
            scale=5,
            elem_id="tune-data",
            placeholder="path of a CSV, TSV, JSONL, JSON or Parquet file",
        )
        upload = gr.UploadButton(
            "Upload…",
            file_types=FILE_TYPES,
            size="sm",
            scale=0,
            min_width=100,
            elem_id="tune-data-upload",
        )
    with gr.Row():
        f["limit"] = number(
            "limit", "Use first N rows", None, precision=0, info="blank or 0 = all rows"
        )
        f["format"] = gr.Radio(
            list(get_args(DataFormat)),
            value=default("format"),
            scale=2,
            label="Format",
            elem_id="tune-format",
            info="auto: messages/alpaca columns, else the template",
        )
    with gr.Row(equal_height=True):
        f["template"] = gr.Dropdown(
            template_choices(),
            value="",
            allow_custom_value=True,
            label="Template (training format)",
            scale=5,
            info="The template that won in Compare; or a .yaml path.",
            elem_id="tune-template",
        )
        refresh = gr.Button("↻", scale=0, min_width=44, elem_id="tune-templates-refresh")
    f["column_map"] = gr.Textbox(
        label="Column map",
        lines=2,
        elem_id="tune-column-map",
        placeholder="VARIABLE=COLUMN, one per line (e.g. sentence=text)",
        info=describe("column_map"),
    )
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
            f["eval_steps"] = number(
                "eval_steps",
                "Eval steps",
                precision=0,
                info="blank or 0 = about 10 evals per run",
            )
            f["save_steps"] = number("save_steps", "Save steps", precision=0)
    with gr.Accordion("Schedule, seed and memory", open=False, elem_id="tune-advanced"):
        with gr.Row():
            f["scheduler"] = gr.Dropdown(
                list(get_args(Scheduler)),
                value=default("scheduler"),
                label="Scheduler",
                elem_id="tune-scheduler",
            )
            f["warmup_ratio"] = number("warmup_ratio", "Warmup ratio", step=0.01)
            f["seed"] = number("seed", "Seed", precision=0)
        with gr.Row():
            f["packing"] = switch("packing", "Packing")
            f["padding_free"] = switch("padding_free", "Padding-free")
            f["gradient_checkpointing"] = switch("gradient_checkpointing", "Gradient checkpointing")
            f["prompt_loss"] = gr.Checkbox(
                False,
                label="Loss on the prompt too",
                elem_id="tune-prompt-loss",
                info="Off: only the answer is trained (the prompt is masked).",
            )


def build_tune_form(services: Services) -> TuneForm:
    fields: dict[str, Any] = {}
    upload, refresh = _model_and_data(services, fields)
    _lora(fields)
    _training(fields)
    form = TuneForm(fields, upload, refresh)
    form.connect()
    return form
