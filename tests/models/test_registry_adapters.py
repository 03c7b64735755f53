"""Adapter specs resolve without loading anything: folders, adapters/<name>, adapter:<name>."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.models import ModelNotFoundError, resolve_spec
from studio.models.catalog import list_models
from studio.models.registry import adapter_spec


def fake_adapter(folder: Path, base: str = "smollm2-135m-instruct", studio: bool = True) -> Path:
    """An adapter folder as far as the registry looks: PEFT config, a weights file, studio.json."""
    folder.mkdir(parents=True)
    config = {"peft_type": "LORA", "r": 4, "base_model_name_or_path": "/somewhere/base"}
    (folder / "adapter_config.json").write_text(json.dumps(config))
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 16)
    if studio:
        card = {
            "name": folder.name,
            "base_model": base,
            "base_location": "/somewhere/base",
            "quantization": "4bit",
            "config": {},
            "template_name": None,
            "template_hash": None,
            "template_yaml": None,
            "dataset_name": "d",
            "dataset_path": None,
            "dataset_hash": "h",
            "n_train": 1,
            "n_eval": 0,
            "metrics": {"eval_loss": 1.25},
            "created_at": "2025-01-01T00:00:00+00:00",
        }
        (folder / "studio.json").write_text(json.dumps(card))
    return folder


@pytest.fixture
def adapters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no ./adapters here, so adapters/<name> falls back to the dir
    root = tmp_path / "store" / "adapters"
    fake_adapter(root / "demo")
    return root


def test_adapter_folder_resolves_with_its_base(adapters: Path) -> None:
    source = resolve_spec(str(adapters / "demo"), adapters)
    assert source.kind == "adapter" and not source.needs_conversion
    assert source.path == (adapters / "demo").resolve()
    assert source.base_spec == "smollm2-135m-instruct"
    assert source.spec == "adapters/demo"


@pytest.mark.parametrize(
    "spec", ["adapters/demo", "adapters/demo/", "adapter:demo", "ADAPTER:demo"]
)
def test_named_adapter_specs_look_in_adapters_dir(adapters: Path, spec: str) -> None:
    source = resolve_spec(spec, adapters)
    assert source.kind == "adapter" and source.path == (adapters / "demo").resolve()


def test_adapters_spec_prefers_the_working_directory(adapters: Path, tmp_path: Path) -> None:
    local = fake_adapter(tmp_path / "adapters" / "demo", base="gemma-3-270m")
    source = resolve_spec("adapters/demo", adapters)
    assert source.path == local.resolve() and source.base_spec == "gemma-3-270m"
    # The one in adapters_dir is now shadowed, so it is shown by its absolute path.
    assert adapter_spec(adapters / "demo", adapters) == str((adapters / "demo").resolve())


def test_foreign_adapter_base_comes_from_peft_config(adapters: Path) -> None:
    foreign = fake_adapter(adapters / "foreign", studio=False)
    assert resolve_spec(str(foreign), adapters).base_spec == "/somewhere/base"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("adapters/missing", "no adapter 'missing'"),
        ("adapter:missing", "no adapter 'missing'"),
        ("adapter:../demo", "not a valid adapter name"),
        ("adapter:", "not a valid adapter name"),
        ("adapters/..", "not a valid adapter name"),
    ],
)
def test_bad_adapter_specs_are_explained(adapters: Path, spec: str, needle: str) -> None:
    with pytest.raises(ModelNotFoundError, match=needle):
        resolve_spec(spec, adapters)


def test_adapter_without_weights_is_explained(adapters: Path) -> None:
    (adapters / "demo" / "adapter_model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match="no weights"):
        resolve_spec("adapter:demo", adapters)


def test_symlink_escaping_adapters_dir_is_refused(adapters: Path, tmp_path: Path) -> None:
    outside = fake_adapter(tmp_path / "elsewhere" / "evil")
    (adapters / "evil").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ModelNotFoundError, match="outside"):
        resolve_spec("adapter:evil", adapters)


def test_catalog_lists_adapters_with_a_spec_that_resolves(adapters: Path, tmp_path: Path) -> None:
    fake_adapter(adapters / ".demo2.tmp-1")  # a run still writing: not listed
    entries = list_models(tmp_path / "models", adapters)
    mine = [e for e in entries if e.source == "adapter"]
    assert [e.spec for e in mine] == ["adapters/demo"]
    assert mine[0].state == "ready" and mine[0].usable
    assert mine[0].note == "LoRA on smollm2-135m-instruct · eval loss 1.250"
    assert resolve_spec(mine[0].spec, adapters).path == (adapters / "demo").resolve()
    assert not any(e.source == "adapter" for e in list_models(tmp_path / "models"))
