"""The Tune tab's export panel without a browser or a model: it is built into the tab with its
inputs, its handler turns the engine's refusals (a k-quant, a demo's visitor, a missing check
template) into a notice next to the button and writes nothing, and a finished export reads as
its path, hash, Ollama command and parity figures."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pytest

from studio.compare.metrics import Estimate
from studio.compare.paired import Paired
from studio.export.deploy import ExportOutcome
from studio.export.parity import Parity
from studio.services import Services, create_services
from studio.settings import load_settings
from studio.tuning.card import write_adapter_metadata
from studio.tuning.export import Export
from studio.ui.tune.export import ExportHandlers, outcome_markdown
from studio.ui.tune.tab import build_tune_tab
from tests.tuning.test_adapters import make_card


def open_services(tmp_path: Path, **values: object) -> Services:
    settings = load_settings(
        home=tmp_path / "home", offline=True, adapters_dir=tmp_path / "ad", **values
    )
    services = create_services(settings)
    write_adapter_metadata(settings.adapters_dir / "demo", make_card("demo", "/m"))
    (settings.adapters_dir / "demo" / "adapter_config.json").write_text('{"r": 4}')
    (settings.adapters_dir / "demo" / "adapter_model.safetensors").write_bytes(b"x")
    return services


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    services = open_services(tmp_path)
    yield services
    services.close()


def files(services: Services) -> list[Path]:
    return sorted(p for p in services.settings.home.rglob("*") if "studio.db" not in p.name)


def test_the_panel_is_built_into_the_tune_tab(services: Services) -> None:
    with gr.Blocks() as app:
        tab = build_tune_tab(services)
    assert tab.export is not None and len(tab.export.inputs) == 6
    ids = {block.elem_id for block in app.blocks.values()}
    assert {"tune-export", "tune-export-adapter", "tune-export-quant", "tune-export-data"} <= ids
    assert tab.export.adapter.choices == [("demo", "demo")]


def test_refusals_are_notices_and_write_nothing(services: Services) -> None:
    handlers = ExportHandlers(services)
    before = files(services)
    assert handlers.export(None, "gguf", "q8_0", "", "", None).startswith("Pick an adapter")
    k_quant = handlers.export("demo", "gguf", "q4_k_m", "", "", None)
    assert k_quant.startswith("⚠") and "llama-quantize" in k_quant
    lone = handlers.export("demo", "gguf", "q8_0", "reviews.csv", "", None)
    assert "both a data file and a template" in lone
    assert files(services) == before


def test_a_demo_refuses_the_export_in_the_engine(tmp_path: Path) -> None:
    services = open_services(tmp_path, demo=True)
    try:
        before = files(services)
        message = ExportHandlers(services).export("demo", "gguf", "f16", "", "", None)
        assert "hosting rule 'operator-only'" in message and "STUDIO_SHARED" in message
        assert files(services) == before
    finally:
        services.close()


def test_a_finished_export_reads_as_path_hash_ollama_and_parity() -> None:
    export = Export(
        adapter="demo", adapter_path="/a/demo", adapter_run_id=3, base_model="smol",
        format="gguf", quant="q8_0", path="/x/demo-q8_0/demo-q8_0.gguf", folder="/x/demo-q8_0",
        sha256="ab" * 32, chat_template=True,
    )  # fmt: skip
    paired = Paired(1, "accuracy", 40, Estimate(-0.025, -0.075, 0.0, 40), "mcnemar-exact", 0.5)
    parity = Parity(
        run_id=9, adapter_spec="adapters/demo", export_spec=export.path, n=40,
        adapter_accuracy=Estimate(0.8, 0.675, 0.9, 40),
        export_accuracy=Estimate(0.775, 0.65, 0.9, 40), paired=paired,
        drift_mean=0.12, drift_max=0.5, drift_n=40,
    )  # fmt: skip
    text = outcome_markdown(ExportOutcome(export, parity))
    assert "`/x/demo-q8_0/demo-q8_0.gguf`" in text and "ab" * 32 in text
    assert "ollama create demo -f /x/demo-q8_0/Modelfile" in text
    assert "accuracy 80.0% [67.5, 90.0]" in text and "accuracy 77.5% [65.0, 90.0]" in text
    assert "-2.5 pts [-7.5, +0.0]" in text and "within noise" in text
    assert "mean 0.1200, max 0.5000 nats over 40 examples" in text and "c9 in Experiments" in text
