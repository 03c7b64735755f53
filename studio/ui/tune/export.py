"""The Tune tab's export panel: an adapter out as a GGUF (llama.cpp, Ollama) or a merged folder,
with the parity check against the adapter. The engine (studio/export/deploy.py) refuses it for a
shared or demo studio's visitors: an export writes a model file to the server's disk."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from studio.export.deploy import AdapterExporter, ExportOutcome, ExportRequest
from studio.models.adapters import adapter_path, list_adapters
from studio.models.errors import ModelError
from studio.services import Services
from studio.settings import SAMPLES_DIR
from studio.tuning.gguf import QUANTS
from studio.ui.common.choices import template_names
from studio.ui.common.errors import log_unexpected, notice

log = logging.getLogger(__name__)
HINT = (
    "Export an adapter for deployment: merged into its base in full precision, converted by "
    "llama.cpp's converter to **GGUF** (with its chat template and an Ollama `Modelfile`), or "
    "a **merged** safetensors folder. With a data file and a template, a **parity check** "
    "scores the export against the adapter (a stored comparison run: accuracy side by side, "
    "the paired difference, the drift of the gold answer's log-probability). Same engine as "
    "`studio adapters export`; only the operator may export (it writes to this machine's disk)."
)


@dataclass
class ExportPanel:
    adapter: gr.Dropdown
    format: gr.Radio
    quant: gr.Dropdown
    data: gr.Textbox
    template: gr.Dropdown
    limit: gr.Number
    button: gr.Button
    result: gr.Markdown

    @property
    def inputs(self) -> list[Any]:
        return [self.adapter, self.format, self.quant, self.data, self.template, self.limit]


class ExportHandlers:
    """The export button: form values → ExportRequest → AdapterExporter, through Services."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def adapter_names(self) -> list[str]:
        return [info.name for info in list_adapters(self.services.settings.adapters_dir)]

    def export(
        self,
        adapter: str | None,
        fmt: str,
        quant: str | None,
        data: str | None,
        template: str | None,
        limit: float | None,
        progress: gr.Progress = gr.Progress(),  # noqa: B008 (gradio's own injection idiom)
    ) -> str:
        if not adapter:
            return "Pick an adapter to export (a tuning run writes one)."
        s = self.services
        try:
            request = ExportRequest(
                folder=adapter_path(s.settings.adapters_dir, adapter),
                format=fmt,
                quant=quant if fmt == "gguf" else None,
                check=(data or "").strip() or None,
                template=template or None,
                limit=int(limit) if limit else None,
            )
            exporter = AdapterExporter(s.settings, s.store, s.comparisons, s.policy)
            outcome = exporter.export(request, lambda message: progress(0, desc=message))
        except Exception as exc:
            log_unexpected(log, exc, (ValueError, ModelError), "export of %s failed", adapter)
            return notice(exc)
        return outcome_markdown(outcome)


def outcome_markdown(outcome: ExportOutcome) -> str:
    """The export's path, hash and Ollama command, and the parity check's figures."""
    export = outcome.export
    parts = [f"**Exported** `{export.adapter}` → `{export.path}`"]
    if export.sha256:
        parts.append(f"sha256 `{export.sha256}`")
    if export.format == "gguf":
        parts.append(
            f"Ollama: `ollama create {export.adapter} -f {Path(export.folder) / 'Modelfile'}`"
        )
    if outcome.parity is not None:
        parts.append("```\n" + "\n".join(outcome.parity.lines()) + "\n```")
        parts.append(f"The parity run is c{outcome.parity.run_id} in Experiments.")
    return "\n\n".join(parts)


def build_export_panel(services: Services) -> ExportPanel:
    handlers = ExportHandlers(services)
    with gr.Accordion("Export for deployment (GGUF / Ollama)", open=False):
        gr.Markdown(HINT, elem_classes=["cmp-hint"])
        with gr.Row():
            # Custom values too: the engine checks the name, as it must for API callers anyway.
            adapter = gr.Dropdown(
                handlers.adapter_names(),
                value=None,
                label="Adapter",
                allow_custom_value=True,
                elem_id="tune-export-adapter",
            )
            fmt = gr.Radio(
                ["gguf", "merged"], value="gguf", label="Format", elem_id="tune-export-format"
            )
            quant = gr.Dropdown(
                list(QUANTS),
                value="q8_0",
                label="GGUF type",
                info="q4_0 is the 4-bit type written here (k-quants need llama-quantize)",
                elem_id="tune-export-quant",
            )
        with gr.Row():
            data = gr.Textbox(
                str(SAMPLES_DIR / "reviews.csv"),
                label="Parity check data",
                info="Empty: no check",
                scale=3,
                elem_id="tune-export-data",
            )
            template = gr.Dropdown(
                ["", *template_names(services.settings)],
                value="reviews-sentiment",
                label="Parity check template",
                elem_id="tune-export-template",
            )
            limit = gr.Number(
                None, label="Rows (empty: all)", precision=0, minimum=1, elem_id="tune-export-limit"
            )
        button = gr.Button("Export", variant="primary", elem_id="tune-export")
        result = gr.Markdown("", elem_id="tune-export-result")
    panel = ExportPanel(adapter, fmt, quant, data, template, limit, button, result)
    # The list is read when the dropdown opens: a run that just finished has its adapter there.
    choices = lambda: gr.Dropdown(choices=handlers.adapter_names())  # noqa: E731
    adapter.focus(choices, None, adapter, api_visibility="private")
    # One export at a time: each merges a model and may run a comparison.
    button.click(
        handlers.export,
        panel.inputs,
        result,
        concurrency_id="tune-export",
        api_name="adapter_export",
        api_visibility="private",
    )
    return panel
