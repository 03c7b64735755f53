"""The Compare tab's set-up form: data and shot pool (with previews), grid axes, scoring options.

The form's values become a CompareConfig through build_config, exactly as the CLI's flags do;
anything invalid is a gr.Error with the message of the layer that found it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from studio.compare.config import CompareConfig, build_config
from studio.datasets import Dataset, DatasetError, load_dataset
from studio.hosting import HostingPolicy, PolicyRefusal
from studio.models.catalog import list_models
from studio.models.loading import QUANTIZATIONS
from studio.services import Services
from studio.templates import TemplateError, list_templates
from studio.ui.compare_values import parse_ints, parse_mapping, same_file, text, whole
from studio.ui.compare_views import dataset_markdown, preview_rows

FILE_TYPES = [".csv", ".tsv", ".tab", ".jsonl", ".ndjson", ".json", ".parquet"]
DEFAULT_LIMIT = 50
PREVIEW_CHARS = 60


def template_names() -> list[str]:
    try:
        return [t.name for t in list_templates()]
    except TemplateError as exc:
        gr.Warning(str(exc))
        return []


def model_choices(services: Services) -> list[str]:
    usable = [
        e.spec
        for e in list_models(services.settings.models_dir, services.settings.adapters_dir)
        if e.usable
    ]
    default = services.settings.default_model
    return usable if default in usable else [default, *usable]


def load_preview(path: Any, role: str, policy: HostingPolicy) -> Dataset | None:
    """The data set at `path` (None when blank); a refusal or DatasetError becomes a gr.Error."""
    where = text(path)
    if where is None:
        return None
    try:
        return load_dataset(where, policy=policy)
    except (DatasetError, PolicyRefusal) as exc:
        raise gr.Error(f"{role}: {exc}") from None


def preview_outputs(dataset: Dataset | None) -> tuple[Any, Any]:
    if dataset is None:
        return "", gr.Dataframe(value=None, visible=False)
    table = pd.DataFrame(preview_rows(dataset, width=PREVIEW_CHARS), columns=dataset.columns)
    return dataset_markdown(dataset), gr.Dataframe(value=table, visible=True)


def pool_note(pool: Any, data: Any) -> str:
    if text(pool) is None:
        return NO_POOL_NOTE
    return SAME_FILE_NOTE if same_file(pool, data) else ""


SAME_FILE_NOTE = (
    "⚠ **This is the evaluation data file itself**: shots would leak from the evaluation set, "
    "so a run refuses it. Give a separate shot-pool file, or clear this to split a pool off "
    "the data."
)
NO_POOL_NOTE = "No shot-pool file: *pool size* rows of the data (shuffled) are held out as shots."


@dataclass
class SetupForm:
    """The components of the form; `fields` are the inputs of Start, in `config` order."""

    data_path: gr.Textbox
    data_upload: gr.UploadButton
    data_info: gr.Markdown
    data_table: gr.Dataframe
    pool_path: gr.Textbox
    pool_upload: gr.UploadButton
    pool_info: gr.Markdown
    pool_table: gr.Dataframe
    pool_warning: gr.Markdown
    templates: gr.Dropdown
    refresh_templates: gr.Button
    fields: dict[str, Any]

    @property
    def inputs(self) -> list[Any]:
        return list(self.fields.values())

    def config(self, values: tuple[Any, ...]) -> CompareConfig:
        """A CompareConfig from the values of `inputs` (same order)."""
        v = dict(zip(self.fields, values, strict=True))
        try:
            given = {
                "name": text(v["name"]),
                "data": text(v["data"]) or "",
                "shot_pool": text(v["shot_pool"]),
                "pool_size": whole(v["pool_size"]),
                "templates": list(v["templates"] or []),
                "models": list(v["models"] or []),
                "shots": parse_ints(v["shots"], "shots"),
                "seeds": parse_ints(v["seeds"], "seeds"),
                "limit": whole(v["limit"]),
                "scoring": v["scoring"],
                "selection": v["selection"],
                "quantization": v["quantization"],
                "metric": v["metric"],
                "regex": text(v["regex"]),
                "max_new_tokens": whole(v["max_new_tokens"]),
                "temperature": v["temperature"],
                "batch_rows": whole(v["batch_rows"]),
                "label_column": text(v["label_column"]),
                "column_map": parse_mapping(v["column_map"]),
            }
            # A blank field means the CLI's default, as an absent flag does.
            return build_config(**{key: x for key, x in given.items() if x is not None})
        except ValueError as exc:  # CompareConfigError, or a value parse_* refused
            raise gr.Error(str(exc)) from None

    def connect(self, policy: HostingPolicy) -> None:
        """Previews on upload, Enter or leaving a path box; the same-file warning; refresh."""
        private: dict[str, Any] = {"api_visibility": "private"}

        def previewer(role: str) -> Callable[[Any], tuple[Any, Any]]:
            return lambda path: preview_outputs(load_preview(path, role, policy))

        warn = (pool_note, [self.pool_path, self.data_path], self.pool_warning)
        for path, upload, role, outputs in (
            (self.data_path, self.data_upload, "Data file", [self.data_info, self.data_table]),
            (self.pool_path, self.pool_upload, "Shot-pool file", [self.pool_info, self.pool_table]),
        ):
            show = previewer(role)
            for trigger in (path.submit, path.blur):
                trigger(show, path, outputs, **private).then(*warn, **private)
            upload.upload(lambda file: file, upload, path, **private).then(
                show, path, outputs, **private
            ).then(*warn, **private)
        self.refresh_templates.click(
            lambda: gr.Dropdown(choices=template_names()), None, self.templates, **private
        )


def _file_picker(label: str, placeholder: str, elem: str) -> tuple[Any, Any, Any, Any]:
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
    return path, upload, info, table


def _grid_axes(services: Services, f: dict[str, Any]) -> gr.Button:
    """Templates, models, shots, seeds and how to score: added to `f`; returns the ↻ button."""
    with gr.Row():
        f["templates"] = gr.Dropdown(
            template_names(),
            value=[],
            multiselect=True,
            allow_custom_value=True,
            label="Templates",
            info="From prompts/ (or a .yaml path); ↻ re-reads the library.",
            scale=5,
            elem_id="compare-templates",
        )
        refresh = gr.Button("↻", scale=0, min_width=44, elem_id="compare-templates-refresh")
        f["models"] = gr.Dropdown(
            model_choices(services),
            value=[services.settings.default_model],
            multiselect=True,
            allow_custom_value=True,
            label="Models",
            info="Bundled alias, Hugging Face id or local folder.",
            scale=5,
            elem_id="compare-models",
        )
    with gr.Row():
        f["shots"] = gr.Textbox("0,5", label="Shots", info="e.g. 0,1,5", elem_id="compare-shots")
        f["seeds"] = gr.Textbox("0", label="Seeds", info="e.g. 1,2,3", elem_id="compare-seeds")
        f["limit"] = gr.Number(
            DEFAULT_LIMIT,
            label="Limit",
            info="first N examples; blank = all",
            precision=0,
            minimum=1,
            elem_id="compare-limit",
        )
        f["pool_size"] = gr.Number(
            100,
            label="Pool size",
            info="held out when no shot-pool file",
            precision=0,
            minimum=1,
            elem_id="compare-pool-size",
        )
    with gr.Row():
        f["scoring"] = gr.Radio(
            ["loglik", "generate"],
            value="loglik",
            label="Scoring",
            info="loglik: the likeliest of the template's choices",
            elem_id="compare-scoring",
        )
        f["selection"] = gr.Radio(
            ["first", "random", "balanced", "similar"],
            value="first",
            label="Shot selection",
            elem_id="compare-selection",
        )
        f["quantization"] = gr.Radio(list(QUANTIZATIONS), value="none", label="Quantization")
    return refresh


def _advanced(f: dict[str, Any]) -> None:
    with gr.Accordion("Generation scoring and advanced settings", open=False):
        with gr.Row():
            f["metric"] = gr.Radio(
                ["exact", "contains", "regex", "f1"],
                value="exact",
                label="Metric (generate)",
                elem_id="compare-metric",
            )
            f["regex"] = gr.Textbox(label="Regex (metric regex)", placeholder=r"^\s*positive")
            f["max_new_tokens"] = gr.Number(16, label="Max new tokens", precision=0, minimum=1)
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


def build_setup_form(services: Services) -> SetupForm:
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
    fields: dict[str, Any] = {"data": data[0], "shot_pool": pool[0]}
    refresh = _grid_axes(services, fields)
    _advanced(fields)
    form = SetupForm(*data, *pool, warning, fields["templates"], refresh, fields)
    form.connect(services.policy)
    return form
