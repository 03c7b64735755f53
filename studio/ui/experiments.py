"""Experiments tab: every comparison run, tuning run and adapter in one list; open, annotate,
delete, re-run, compare, export and move them between studios.

The tab is layout and wiring only: ExperimentsHandlers (experiments_handlers) calls
studio.experiments, the same engine as `studio runs`, and experiments_views formats.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.services import Services
from studio.ui.experiments_handlers import NOTHING_OPEN, ExperimentsHandlers
from studio.ui.experiments_views import (
    EMPTY_CURVES,
    LIST_HEADERS,
    METRIC_HEADERS,
    curves_svg,
)

INTRO = (
    "Every **comparison run** (`c…`), **tuning run** (`t…`) and **adapter** (`a…`) the studio "
    "has stored. Filter the list, select a row to open it, tick several to compare them side by "
    "side or export them. Same engine as `studio runs`."
)
PRIVATE: dict[str, Any] = {"api_visibility": "private"}


def _plot(title: str, elem_id: str) -> gr.HTML:
    return gr.HTML(curves_svg(EMPTY_CURVES, title), elem_id=elem_id, elem_classes=["exp-plot"])


def _with_curves(handler: Any, **titles: str) -> Any:
    """`handler` with the curve frames at the positions named in `titles` drawn as SVG."""

    def wrapped(*args: Any) -> tuple[Any, ...]:
        values = list(handler(*args))
        for position, title in titles.items():
            values[int(position[1:])] = curves_svg(values[int(position[1:])], title)
        return tuple(values)

    return wrapped


def build_experiments_tab(services: Services) -> None:
    h = ExperimentsHandlers(services)
    gr.Markdown(INTRO, elem_classes=["exp-intro"])
    with gr.Row(equal_height=True):
        kind = gr.Dropdown(["", "comparison", "tuning", "adapter"], value="", label="Kind",
                           elem_id="exp-kind", scale=1)  # fmt: skip
        status = gr.Dropdown(["", "completed", "running", "queued", "stopped", "interrupted",
                              "failed", "cancelled", "ready"], value="", label="Status",
                             elem_id="exp-status", scale=1)  # fmt: skip
        tag = gr.Textbox(label="Tag", elem_id="exp-tag", scale=1)
        search = gr.Textbox(label="Search", placeholder="name, note, model, template, data…",
                            elem_id="exp-search", scale=2)  # fmt: skip
        refresh = gr.Button("Refresh", scale=0, min_width=110, elem_id="exp-refresh")
    with gr.Accordion("More filters", open=False), gr.Row():
        model = gr.Textbox(label="Model", elem_id="exp-model")
        template = gr.Textbox(label="Template", elem_id="exp-template")
        dataset = gr.Textbox(label="Dataset (name or hash)", elem_id="exp-dataset")
        since = gr.Textbox(label="From (YYYY-MM-DD)", elem_id="exp-since")
        until = gr.Textbox(label="To (YYYY-MM-DD)", elem_id="exp-until")
    filters = [kind, status, tag, search, model, template, dataset, since, until]
    note = gr.Markdown("", elem_id="exp-list-note")
    table = gr.Dataframe(headers=LIST_HEADERS, interactive=False, wrap=True, max_height=320,
                         elem_id="exp-list")  # fmt: skip
    selection = gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True,
                            label="Selected runs (compare, export)",
                            elem_id="exp-selection")  # fmt: skip
    opened = gr.State(None)
    list_outputs = [table, note, selection]

    def refresh_all(*values: Any) -> tuple[Any, ...]:
        frame, text, choices = h.refresh(*values)
        return frame, text, gr.Dropdown(choices=choices)

    relist = (refresh_all, filters, list_outputs)
    with gr.Tabs():
        with gr.Tab("Run", id="exp-run-tab"):
            detail = _build_detail(h, opened, relist)
        with gr.Tab("Compare", id="exp-compare-tab"):
            _build_compare(h, selection)
        with gr.Tab("Export & import", id="exp-export-tab"):
            _build_export(h, selection, relist)
    boxes = (tag, search, model, template, dataset, since, until)
    for trigger in (refresh.click, kind.input, status.input, *(box.submit for box in boxes)):
        trigger(*relist, **PRIVATE)
    # On page load: the list as the store holds it now.
    gr.on(None, lambda: refresh_all(*([""] * len(filters))), None, list_outputs, **PRIVATE)

    def clicked(chosen: list[str] | None, evt: gr.SelectData) -> tuple[Any, Any]:
        """Open the clicked run and add it to the selection."""
        row = evt.row_value or []
        if not row:
            return gr.skip(), gr.skip()
        label = f"{row[0]} · {row[2]}"
        chosen = list(chosen or [])
        return row[0], gr.Dropdown(value=chosen if label in chosen else [*chosen, label])

    table.select(clicked, selection, [opened, selection], **PRIVATE).then(
        _with_curves(h.open, p6="Train loss"), opened, detail, **PRIVATE
    )


def _build_detail(h: ExperimentsHandlers, opened: gr.State, relist: tuple[Any, ...]) -> list[Any]:
    info = gr.Markdown(NOTHING_OPEN, elem_id="exp-detail")
    with gr.Row(equal_height=True):
        text = gr.Textbox(label="Tag / name / note", scale=4, elem_id="exp-annotation")
        add_tag = gr.Button("Add tag", scale=0, min_width=100, elem_id="exp-add-tag")
        untag = gr.Button("Remove tag", scale=0, min_width=100)
        rename = gr.Button("Rename", scale=0, min_width=100, elem_id="exp-rename")
        annotate = gr.Button("Save note", scale=0, min_width=100, elem_id="exp-note")
        rerun = gr.Button("Re-run", scale=0, min_width=100, elem_id="exp-rerun")
        delete = gr.Button("Delete…", variant="stop", scale=0, min_width=100, elem_id="exp-delete")
    notice = gr.Markdown("", elem_id="exp-notice")
    with gr.Row(visible=False, elem_id="exp-confirm-row") as confirm_row:
        confirm = gr.Button("Yes, delete it", variant="stop", elem_id="exp-confirm-delete")
        cancel = gr.Button("Cancel", elem_id="exp-cancel-delete")
    summary = gr.Dataframe(interactive=False, label="Metrics (95% bootstrap CI)",
                           elem_id="exp-summary")  # fmt: skip
    curve = _plot("Train loss", "exp-run-loss")
    examples = gr.Dataframe(interactive=False, wrap=True, max_height=300, elem_id="exp-examples",
                            label="Per-example results (first 500)")  # fmt: skip
    with gr.Accordion("Config", open=False):
        config = gr.Code(language="yaml", elem_id="exp-config")
    with gr.Accordion("Template text", open=False):
        template = gr.Code(language="yaml", elem_id="exp-template-text")
    with gr.Accordion("Log (tail)", open=False):
        log = gr.Textbox(show_label=False, lines=10, max_lines=14, interactive=False)
    outputs = [opened, info, summary, examples, config, template, curve, log]
    reopen = (_with_curves(h.open, p6="Train loss"), opened, outputs)
    for button, action in ((add_tag, "tag"), (untag, "untag"), (rename, "rename"),
                           (annotate, "note")):  # fmt: skip
        button.click(_annotator(h, action), [opened, text], notice, **PRIVATE).then(
            *reopen, **PRIVATE
        ).then(*relist, **PRIVATE)
    rerun.click(h.rerun, opened, notice, concurrency_id="compare", **PRIVATE).then(
        *relist, **PRIVATE
    )

    def ask(ref: str | None) -> tuple[str, Any]:
        question, show = h.ask_delete(ref)
        return question, gr.Row(visible=show)

    delete.click(ask, opened, [notice, confirm_row], **PRIVATE)
    cancel.click(lambda: ("Delete cancelled.", gr.Row(visible=False)), None,
                 [notice, confirm_row], **PRIVATE)  # fmt: skip
    confirm.click(lambda r: (h.delete(r), gr.Row(visible=False), None), opened,
                  [notice, confirm_row, opened], **PRIVATE).then(
        *reopen, **PRIVATE).then(*relist, **PRIVATE)  # fmt: skip
    return outputs


def _build_compare(h: ExperimentsHandlers, selection: gr.Dropdown) -> list[Any]:
    with gr.Row(equal_height=True):
        run = gr.Button("Compare selected", variant="primary", scale=0, min_width=180,
                        elem_id="exp-compare")  # fmt: skip
        only = gr.Checkbox(True, label="Differences only", elem_id="exp-diff-only")
    status = gr.Markdown("Select two or more runs above, then Compare.", elem_id="exp-compare-note")
    metrics = gr.Dataframe(headers=METRIC_HEADERS, interactive=False, wrap=True,
                           label="Metrics side by side", elem_id="exp-metrics")  # fmt: skip
    diff = gr.Dataframe(interactive=False, wrap=True, max_height=320, label="Config diff",
                        elem_id="exp-diff")  # fmt: skip
    with gr.Row():
        loss = _plot("Train loss", "exp-loss")
        eval_loss = _plot("Eval loss", "exp-eval-loss")
    agreement = gr.Markdown("", elem_id="exp-agreement")
    per_example = gr.Dataframe(interactive=False, max_height=300, label="Right (✓) or wrong (✗)",
                               elem_id="exp-agreement-table")  # fmt: skip
    result = gr.State(None)
    outputs = [status, metrics, diff, loss, eval_loss, agreement, per_example, result]
    compare = _with_curves(h.compare, p3="Train loss", p4="Eval loss")
    run.click(compare, [selection, only], outputs, **PRIVATE)
    only.change(h.rediff, [result, only], diff, **PRIVATE)
    return outputs


def _build_export(h: ExperimentsHandlers, selection: gr.Dropdown, relist: tuple[Any, ...]) -> None:
    gr.Markdown("Per-example rows (each with its exact prompt) of the selected runs; tuning runs "
                "give one row per logged step. A bundle carries runs, results, metric points, "
                "template versions and dataset records to another studio.")  # fmt: skip
    with gr.Row(equal_height=True):
        fmt = gr.Radio(["csv", "json", "jsonl"], value="csv", label="Format", elem_id="exp-format")
        export = gr.Button("Export selected", elem_id="exp-export")
        bundle = gr.Button("Export bundle (.zip)", elem_id="exp-bundle")
    notice = gr.Markdown("", elem_id="exp-export-note")
    download = gr.File(label="Download", interactive=False, elem_id="exp-download")
    upload = gr.File(label="Import a bundle (.zip)", file_types=[".zip"], elem_id="exp-upload")
    into = gr.Button("Import bundle", elem_id="exp-import")
    export.click(h.export, [selection, fmt], [notice, download], **PRIVATE)
    bundle.click(h.export_bundle, selection, [notice, download], **PRIVATE)
    into.click(h.import_bundle, upload, notice, **PRIVATE).then(*relist, **PRIVATE)


def _annotator(h: ExperimentsHandlers, action: str) -> Any:
    def annotate(ref: str | None, text: str) -> str:
        return h.annotate(ref, action, text)

    return annotate
