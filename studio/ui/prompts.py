"""Prompts tab: browse the template library, edit a template's YAML, preview it on a data row
exactly as the model will see it, save numbered versions, diff them, duplicate and delete."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services import Services
from studio.templates import library as lib
from studio.templates import preview as pv
from studio.ui.prompts_handlers import PromptsHandlers, model_choices
from studio.ui.prompts_wiring import PromptsTab, wire


def _library_panel(handlers: PromptsHandlers) -> dict[str, Any]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=4):
            table = gr.Dataframe(
                value=lambda: handlers.library.rows(),
                headers=lib.LIBRARY_COLUMNS,
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


def _editor_panel(handlers: PromptsHandlers) -> dict[str, Any]:
    loaded_note = gr.Markdown(handlers.loaded_note(""), elem_id="prompts-loaded")
    editor = gr.Code(
        "",
        language="yaml",
        lines=18,
        max_lines=30,
        wrap_lines=True,
        label="Template YAML (name is the file name: saving writes prompts/<name>.yaml)",
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


def _preview_panel(services: Services) -> dict[str, Any]:
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
    default_model = services.settings.default_model
    with gr.Row(equal_height=True):
        model = gr.Dropdown(
            model_choices(services),
            value=default_model,
            label="Model (tokenizer and chat template)",
            allow_custom_value=True,
            elem_id="prompts-model",
            scale=3,
        )
        preview = gr.Button("Preview", variant="primary", elem_id="prompts-preview", scale=1)
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
        "data_path": data_path,
        "upload": upload,
        "row": row,
        "shots": shots,
        "model": model,
        "preview": preview,
        "preview_status": status,
        "tokens": tokens,
        "text": text,
        "fewshot": fewshot,
        "answer": answer,
    }


def _versions_panel() -> dict[str, Any]:
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            versions = gr.Dataframe(
                headers=lib.VERSION_COLUMNS,
                interactive=False,
                max_height=220,
                label="Stored versions of the loaded template",
                elem_id="prompts-versions",
            )
            with gr.Row():
                diff_from = gr.Dropdown([], label="Diff from", elem_id="prompts-diff-from")
                diff_to = gr.Dropdown([], label="to", elem_id="prompts-diff-to")
            diff = gr.HTML(lib.diff_html("", None, None), elem_id="prompts-diff")
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


def build_prompts_tab(services: Services) -> PromptsTab:
    """Lay out and wire the tab on `services.templates` (tests give it a copy of the library)."""
    handlers = PromptsHandlers(services)
    parts: dict[str, Any] = {"loaded": gr.State(""), "buffer": gr.State(""), "notice": gr.State("")}
    parts.update(_library_panel(handlers))
    with gr.Row(equal_height=False, elem_id="prompts-workbench"):
        with gr.Column(scale=1):
            parts.update(_editor_panel(handlers))
        with gr.Column(scale=1):
            parts.update(_preview_panel(services))
    with gr.Accordion("Versions, duplicate, delete", open=True):
        parts.update(_versions_panel())
    tab = PromptsTab(**parts)
    wire(tab, handlers)
    return tab
