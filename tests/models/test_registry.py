from pathlib import Path

import pytest

from studio.models import BUNDLED_MODELS, ModelNotFoundError, resolve_spec


def test_bundled_aliases_resolve_case_insensitively() -> None:
    source = resolve_spec("SmolLM2-135M-Instruct")
    assert source.kind == "bundled"
    assert source.bundled is BUNDLED_MODELS["smollm2-135m-instruct"]
    assert source.needs_conversion
    assert resolve_spec("gemma-3-270m").bundled.instruct is False


def test_bundled_ggufs_are_installed() -> None:
    gguf = BUNDLED_MODELS["smollm2-135m-instruct"].gguf_path(Path("/nonexistent"))
    assert gguf is not None and gguf.suffix == ".gguf" and gguf.stat().st_size > 50_000_000


def test_hub_ids_are_recognised_without_network() -> None:
    source = resolve_spec("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert source.kind == "hub" and source.hub_id == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_local_folder_and_gguf_file(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text("{}")
    assert resolve_spec(str(folder)).kind == "local"
    gguf = tmp_path / "x.gguf"
    gguf.write_bytes(b"GGUF")
    assert resolve_spec(str(gguf)).kind == "gguf"
    only = tmp_path / "only"
    only.mkdir()
    (only / "a.gguf").write_bytes(b"GGUF")
    assert resolve_spec(str(only)).path == only / "a.gguf"


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("", "No model given"),
        ("./no/such/folder", "does not exist"),
        ("weird spec with spaces", "is not a model spec"),
    ],
)
def test_impossible_specs_say_what_to_do(spec: str, needle: str) -> None:
    with pytest.raises(ModelNotFoundError, match=needle) as info:
        resolve_spec(spec)
    assert "smollm2-135m-instruct" in str(info.value)


def test_folder_without_a_model_is_explained(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match=r"no config\.json"):
        resolve_spec(str(tmp_path))
    text = tmp_path / "notes.txt"
    text.write_text("hi")
    with pytest.raises(ModelNotFoundError, match=r"not a \.gguf"):
        resolve_spec(str(text))
