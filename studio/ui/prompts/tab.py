"""Prompts tab layout and wiring: browse the template library, edit a template's YAML, preview
it on a data row exactly as the model will see it, save numbered versions, diff them, duplicate
and delete."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.services import Services
from studio.ui.prompts.handlers import PromptsHandlers
from studio.ui.prompts.panels import editor_panel, library_panel, preview_panel, versions_panel

PRIVATE: dict[str, Any] = {"api_visibility": "private"}


@dataclass
class PromptsTab:
    """The tab's components, so the wiring below can name them."""

    loaded: gr.State
    buffer: gr.State
    notice: gr.State
    library_table: gr.Dataframe
    picker: gr.Dropdown
    load: gr.Button
    refresh: gr.Button
    loaded_note: gr.Markdown
    editor: gr.Code
    validate: gr.Button
    save: gr.Button
    validation: gr.Markdown
    save_status: gr.Markdown
    data_path: gr.Textbox
    upload: gr.UploadButton
    row: gr.Number
    shots: gr.Slider
    model: gr.Dropdown
    preview: gr.Button
    preview_status: gr.Markdown
    text: gr.Code
    tokens: gr.Markdown
    fewshot: gr.Code
    answer: gr.Textbox
    versions: gr.Dataframe
    diff_from: gr.Dropdown
    diff_to: gr.Dropdown
    diff: gr.HTML
    new_name: gr.Textbox
    duplicate: gr.Button
    confirm: gr.Checkbox
    delete: gr.Button
    manage_status: gr.Markdown


def _wire(tab: PromptsTab, h: PromptsHandlers) -> None:
    """Actions write their result into states first, so a gr.Error shows only as a message
    instead of marking every output; `.success` steps then update the visible components."""
    library_out = [tab.library_table, tab.picker]
    versions_out = [tab.versions, tab.diff_from, tab.diff_to, tab.diff]
    shown_out = [tab.picker, tab.editor, tab.loaded_note, *versions_out]
    loaded = [tab.loaded, tab.buffer]
    tab.refresh.click(h.refresh, tab.picker, library_out, api_name="library")
    tab.load.click(h.load, tab.picker, loaded, api_name="prompts_load").success(
        h.show, loaded, shown_out, **PRIVATE
    )
    tab.picker.select(h.load, tab.picker, loaded, **PRIVATE).success(
        h.show, loaded, shown_out, **PRIVATE
    )
    tab.library_table.select(h.load_selected, tab.library_table, loaded, **PRIVATE).success(
        h.show, loaded, shown_out, **PRIVATE
    )
    _wire_preview(tab, h)
    _wire_versions(tab, h, library_out, versions_out)


def _wire_versions(
    tab: PromptsTab, h: PromptsHandlers, library_out: list[Any], versions_out: list[Any]
) -> None:
    result = [tab.loaded, tab.notice]
    tab.validate.click(h.validate, tab.editor, tab.validation, api_name="prompts_validate")
    saved_out = [tab.save_status, tab.loaded_note, *library_out, *versions_out]
    tab.save.click(h.save, tab.editor, result, api_name="prompts_save").success(
        h.after_save, result, saved_out, **PRIVATE
    )
    gr.on(
        [tab.diff_from.input, tab.diff_to.input],
        h.diff,
        [tab.loaded, tab.diff_from, tab.diff_to],
        tab.diff,
        **PRIVATE,
    )
    managed_out = [tab.manage_status, tab.confirm, *library_out, tab.loaded_note, *versions_out]
    tab.duplicate.click(
        h.duplicate,
        [tab.editor, tab.new_name],
        [tab.loaded, tab.buffer, tab.notice],
        api_name="prompts_duplicate",
    ).success(h.after_manage, result, managed_out, **PRIVATE).success(
        lambda text: text, tab.buffer, tab.editor, **PRIVATE
    )
    tab.delete.click(
        h.delete, [tab.loaded, tab.confirm], result, api_name="prompts_delete"
    ).success(h.after_manage, result, managed_out, **PRIVATE)


def _wire_preview(tab: PromptsTab, h: PromptsHandlers) -> None:
    inputs = [tab.editor, tab.data_path, tab.row, tab.shots, tab.model]
    outputs = [
        tab.validation,
        tab.preview_status,
        tab.text,
        tab.tokens,
        tab.fewshot,
        tab.answer,
    ]

    def live(text: str, data_path: str, row: Any, k: Any, model: str) -> tuple[str, ...]:
        return h.preview(text, data_path, row, k, model, load=False)

    def full(text: str, data_path: str, row: Any, k: Any, model: str) -> tuple[str, ...]:
        return h.preview(text, data_path, row, k, model, load=True)

    # One queue for both, in order: a live preview never overwrites a later Preview's result.
    queue = "prompts-preview"
    tab.preview.click(full, inputs, outputs, api_name="preview", concurrency_id=queue)
    triggers = [
        tab.editor.change,
        tab.data_path.submit,
        tab.row.change,
        tab.shots.change,
        tab.model.change,
    ]
    gr.on(
        triggers,
        live,
        inputs,
        outputs,
        trigger_mode="always_last",
        show_progress="hidden",
        api_visibility="private",
        concurrency_id=queue,
    )
    tab.upload.upload(lambda path: path, tab.upload, tab.data_path, api_visibility="private").then(
        live, inputs, outputs, api_visibility="private", concurrency_id=queue
    )


def build_prompts_tab(services: Services) -> PromptsTab:
    """Lay out and wire the tab on `services.templates` (tests give it a copy of the library)."""
    handlers = PromptsHandlers(services)
    parts: dict[str, Any] = {"loaded": gr.State(""), "buffer": gr.State(""), "notice": gr.State("")}
    parts.update(library_panel(handlers))
    with gr.Row(equal_height=False, elem_id="prompts-workbench"):
        with gr.Column(scale=1):
            parts.update(editor_panel(handlers))
        with gr.Column(scale=1):
            parts.update(preview_panel(services.settings))
    with gr.Accordion("Versions, duplicate, delete", open=True):
        parts.update(versions_panel())
    tab = PromptsTab(**parts)
    _wire(tab, handlers)
    return tab
