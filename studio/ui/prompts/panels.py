"""The Prompts tab's four panels: the library, the editor, the preview and the versions. Each
returns its components by name for PromptsTab."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.settings import Settings
from studio.templates import preview as pv
from studio.ui.common.choices import model_choices
from studio.ui.prompts.handlers import PromptsHandlers
from studio.ui.prompts.views import LIBRARY_COLUMNS, VERSION_COLUMNS, diff_html


def library_panel(handlers: PromptsHandlers) -> dict[str, Any]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=4):
            table = gr.Dataframe(
                value=lambda: handlers.library.rows(),
                headers=LIBRARY_COLUMNS,
                interactive=False,
                wrap=True,
                max_height=260,
                column_widths=["24%", "12%", "52%", "12%"],
                label="Template library — select a row to load it",
                elem_id="prompts-library",
            )
        with gr.Column(scale=1, min_width=240):
            picker = gr.Dropdown(
                handlers.library.names(),
                value=None,
                label="Template",
                allow_custom_value=True,
                elem_id="prompts-picker",
            )
            with gr.Row():
                load = gr.Button("Load", variant="primary", elem_id="prompts-load")
                refresh = gr.Button("Refresh", elem_id="prompts-refresh")
    return {"library_table": table, "picker": picker, "load": load, "refresh": refresh}


def editor_panel(handlers: PromptsHandlers) -> dict[str, Any]:
    loaded_note = gr.Markdown(handlers.loaded_note(""), elem_id="prompts-loaded")
    editor = gr.Code(
        "",
        language="yaml",
        lines=18,
        max_lines=30,
        wrap_lines=True,
        label="Template YAML (name is the file name: saving writes <name>.yaml in the library)",
        elem_id="prompts-editor",
    )
    validation = gr.Markdown("", elem_id="prompts-validation")
    with gr.Row():
        validate = gr.Button("Validate", elem_id="prompts-validate")
        save = gr.Button("Save as new version", variant="primary", elem_id="prompts-save")
    save_status = gr.Markdown("", elem_id="prompts-save-status")
    return {
        "loaded_note": loaded_note,
        "editor": editor,
        "validation": validation,
        "validate": validate,
        "save": save,
        "save_status": save_status,
    }


def preview_panel(settings: Settings) -> dict[str, Any]:
    """What to preview (data, row, shots, model), then the preview itself."""
    with gr.Row(equal_height=False):
        data_path = gr.Textbox(
            pv.DEFAULT_DATA, label="Data file (Enter to apply)", scale=4, elem_id="prompts-data"
        )
        upload = gr.UploadButton(
            "Upload data…",
            file_types=[".csv", ".tsv", ".jsonl", ".json", ".parquet"],
            size="md",
            scale=1,
            elem_id="prompts-upload",
        )
    with gr.Row(equal_height=True):
        row = gr.Number(0, label="Row", precision=0, minimum=0, elem_id="prompts-row", scale=1)
        shots = gr.Slider(
            0, pv.MAX_SHOTS, value=0, step=1, label="Shots k", elem_id="prompts-k", scale=2
        )
    with gr.Row(equal_height=True):
        model = gr.Dropdown(
            model_choices(settings),
            value=settings.default_model,
            label="Model (tokenizer and chat template)",
            allow_custom_value=True,
            elem_id="prompts-model",
            scale=3,
        )
        preview = gr.Button("Preview", variant="primary", elem_id="prompts-preview", scale=1)
    chosen = {"data_path": data_path, "upload": upload, "row": row, "shots": shots}
    return {**chosen, "model": model, "preview": preview, **_preview_outputs()}


def _preview_outputs() -> dict[str, Any]:
    status = gr.Markdown("", elem_id="prompts-preview-status")
    tokens = gr.Markdown("", elem_id="prompts-tokens")
    text = gr.Code(
        "",
        language=None,
        lines=10,
        wrap_lines=True,
        interactive=False,
        label="Exact text the model sees",
        elem_id="prompts-preview-text",
    )
    with gr.Row(equal_height=False):
        fewshot = gr.Code(
            "",
            language=None,
            lines=4,
            max_lines=12,
            wrap_lines=True,
            interactive=False,
            label="Few-shot block alone",
            elem_id="prompts-fewshot",
            scale=3,
        )
        answer = gr.Textbox(label="Gold answer", interactive=False, elem_id="prompts-answer")
    return {
        "preview_status": status,
        "tokens": tokens,
        "text": text,
        "fewshot": fewshot,
        "answer": answer,
    }


def versions_panel() -> dict[str, Any]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            versions = gr.Dataframe(
                headers=VERSION_COLUMNS,
                interactive=False,
                max_height=220,
                label="Stored versions of the loaded template",
                elem_id="prompts-versions",
            )
            with gr.Row():
                diff_from = gr.Dropdown([], label="Diff from", elem_id="prompts-diff-from")
                diff_to = gr.Dropdown([], label="to", elem_id="prompts-diff-to")
            diff = gr.HTML(diff_html("", None, None), elem_id="prompts-diff")
        with gr.Column(scale=2, min_width=260):
            new_name = gr.Textbox(
                label="Duplicate as (new name)",
                placeholder="my-template-v2",
                elem_id="prompts-new-name",
            )
            duplicate = gr.Button("Duplicate", elem_id="prompts-duplicate")
            confirm = gr.Checkbox(
                label="Yes, delete the loaded template", elem_id="prompts-delete-confirm"
            )
            delete = gr.Button("Delete", variant="stop", elem_id="prompts-delete")
            manage_status = gr.Markdown("", elem_id="prompts-manage-status")
    return {
        "versions": versions,
        "diff_from": diff_from,
        "diff_to": diff_to,
        "diff": diff,
        "new_name": new_name,
        "duplicate": duplicate,
        "confirm": confirm,
        "delete": delete,
        "manage_status": manage_status,
    }
