"""Experiments tab layout and wiring: every comparison run, tuning run and adapter in one list;
open, annotate, delete, re-run, compare, export and move them between studios.

ExperimentsHandlers calls studio.experiments, the same engine as `studio runs`, and
experiments/views.py formats.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.services import Services
from studio.ui.experiments.form import FILTER_FIELDS
from studio.ui.experiments.handlers import ExperimentsHandlers
from studio.ui.experiments.views import (
    EMPTY_CURVES,
    LIST_HEADERS,
    METRIC_HEADERS,
    NOTHING_OPEN,
    curves_svg,
)

INTRO = (
    "Every **comparison run** (`c…`), **tuning run** (`t…`) and **adapter** (`a…`) the studio "
    "has stored. Filter the list, select a row to open it, tick several to compare them side by "
    "side or export them. Same engine as `studio runs`."
)
PRIVATE: dict[str, Any] = {"api_visibility": "private"}


@dataclass
class ExperimentsTab:
    handlers: ExperimentsHandlers
    filters: list[Any]  # the FILTER_FIELDS inputs, in order
    refresh: gr.Button
    note: gr.Markdown
    table: gr.Dataframe
    selection: gr.Dropdown
    opened: gr.State
    detail: list[Any]  # what ExperimentsHandlers.open fills
    compared: list[Any]  # what ExperimentsHandlers.compare fills

    @property
    def list_outputs(self) -> list[Any]:
        return [self.table, self.note, self.selection]


def _plot(title: str, elem_id: str) -> gr.HTML:
    return gr.HTML(curves_svg(EMPTY_CURVES, title), elem_id=elem_id, elem_classes=["exp-plot"])


def _with_curves(handler: Callable[..., tuple[Any, ...]], **titles: str) -> Any:
    """`handler` with the curve frames at the positions named in `titles` drawn as SVG."""

    def wrapped(*args: Any) -> tuple[Any, ...]:
        values = list(handler(*args))
        for position, title in titles.items():
            values[int(position[1:])] = curves_svg(values[int(position[1:])], title)
        return tuple(values)

    return wrapped


def _annotator(h: ExperimentsHandlers, action: str) -> Any:
    def annotate(ref: str | None, text: str) -> str:
        return h.annotate(ref, action, text)

    return annotate


def _filters() -> tuple[list[Any], gr.Button]:
    """The list's filters (FILTER_FIELDS order) and its Refresh button."""
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
    return [kind, status, tag, search, model, template, dataset, since, until], refresh


def _detail() -> tuple[list[Any], dict[str, Any]]:
    """The opened run: (what `open` fills after the opened ref, the action components)."""
    info = gr.Markdown(NOTHING_OPEN, elem_id="exp-detail")
    with gr.Row(equal_height=True):
        ui: dict[str, Any] = {
            "text": gr.Textbox(label="Tag / name / note", scale=4, elem_id="exp-annotation")
        }
        ui["tag"] = gr.Button("Add tag", scale=0, min_width=100, elem_id="exp-add-tag")
        ui["untag"] = gr.Button("Remove tag", scale=0, min_width=100)
        ui["rename"] = gr.Button("Rename", scale=0, min_width=100, elem_id="exp-rename")
        ui["note"] = gr.Button("Save note", scale=0, min_width=100, elem_id="exp-note")
        ui["rerun"] = gr.Button("Re-run", scale=0, min_width=100, elem_id="exp-rerun")
        ui["delete"] = gr.Button("Delete…", variant="stop", scale=0, min_width=100,
                                 elem_id="exp-delete")  # fmt: skip
    ui["notice"] = gr.Markdown("", elem_id="exp-notice")
    with gr.Row(visible=False, elem_id="exp-confirm-row") as confirm_row:
        ui["confirm"] = gr.Button("Yes, delete it", variant="stop", elem_id="exp-confirm-delete")
        ui["cancel"] = gr.Button("Cancel", elem_id="exp-cancel-delete")
    ui["confirm_row"] = confirm_row
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
    return [info, summary, examples, config, template, curve, log], ui


def _wire_detail(
    h: ExperimentsHandlers, opened: gr.State, outputs: list[Any], ui: dict[str, Any], relist: Any
) -> None:
    reopen = (_with_curves(h.open, p6="Train loss"), opened, outputs)
    for action in ("tag", "untag", "rename", "note"):
        ui[action].click(_annotator(h, action), [opened, ui["text"]], ui["notice"],
                         **PRIVATE).then(*reopen, **PRIVATE).then(*relist, **PRIVATE)  # fmt: skip
    ui["rerun"].click(h.rerun, opened, ui["notice"], concurrency_id="compare", **PRIVATE).then(
        *relist, **PRIVATE
    )
    asked = [ui["notice"], ui["confirm_row"]]
    ui["delete"].click(h.ask, opened, asked, **PRIVATE)
    ui["cancel"].click(lambda: ("Delete cancelled.", gr.Row(visible=False)), None, asked,
                       **PRIVATE)  # fmt: skip
    ui["confirm"].click(lambda r: (h.delete(r), gr.Row(visible=False), None), opened,
                        [*asked, opened], **PRIVATE).then(
        *reopen, **PRIVATE).then(*relist, **PRIVATE)  # fmt: skip


def _compare(h: ExperimentsHandlers, selection: gr.Dropdown) -> list[Any]:
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
    judged = gr.Markdown("", elem_id="exp-judges")
    result = gr.State(None)
    outputs = [status, metrics, diff, loss, eval_loss, agreement, per_example, judged, result]
    compare = _with_curves(h.compare, p3="Train loss", p4="Eval loss")
    run.click(compare, [selection, only], outputs, **PRIVATE)
    only.change(h.rediff, [result, only], diff, **PRIVATE)
    return outputs


def _export(h: ExperimentsHandlers, selection: gr.Dropdown, relist: Any) -> None:
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


def _wire_list(tab: ExperimentsTab, relist: Any) -> None:
    h, (kind, status, *boxes) = tab.handlers, tab.filters
    for trigger in (tab.refresh.click, kind.input, status.input, *(box.submit for box in boxes)):
        trigger(*relist, **PRIVATE)
    # On page load: the list as the store holds it now.
    blank = [""] * len(FILTER_FIELDS)
    gr.on(None, lambda: h.refresh_all(*blank), None, tab.list_outputs, **PRIVATE)
    tab.table.select(h.clicked, tab.selection, [tab.opened, tab.selection], **PRIVATE).then(
        _with_curves(h.open, p6="Train loss"), tab.opened, tab.detail, **PRIVATE
    )


def build_experiments_tab(services: Services) -> ExperimentsTab:
    h = ExperimentsHandlers(services)
    gr.Markdown(INTRO, elem_classes=["exp-intro"])
    filters, refresh = _filters()
    note = gr.Markdown("", elem_id="exp-list-note")
    table = gr.Dataframe(headers=LIST_HEADERS, interactive=False, wrap=True, max_height=320,
                         elem_id="exp-list")  # fmt: skip
    selection = gr.Dropdown([], value=[], multiselect=True, allow_custom_value=True,
                            label="Selected runs (compare, export)",
                            elem_id="exp-selection")  # fmt: skip
    opened = gr.State(None)
    relist = (h.refresh_all, filters, [table, note, selection])
    with gr.Tabs():
        with gr.Tab("Run", id="exp-run-tab"):
            shown, actions = _detail()
            detail = [opened, *shown]
            _wire_detail(h, opened, detail, actions, relist)
        with gr.Tab("Compare", id="exp-compare-tab"):
            compared = _compare(h, selection)
        with gr.Tab("Export & import", id="exp-export-tab"):
            _export(h, selection, relist)
    tab = ExperimentsTab(h, filters, refresh, note, table, selection, opened, detail, compared)
    _wire_list(tab, relist)
    return tab
