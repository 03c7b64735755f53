"""TuneConfig: one object built the same way from flat values (CLI, UI) and YAML, with errors
that name the field; the shipped sample configs load."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.tuning.config import (
    TuneConfig,
    TuneConfigError,
    build_tune_config,
    flat_config,
    load_tune_config,
)
from tests.conftest import ROOT


def test_flat_values_and_yaml_build_the_same_config(tmp_path: Path) -> None:
    flat = flat_config(
        name="my-lora",
        data="train.jsonl",
        lora_r=8,
        lr=1e-4,
        max_steps=10,
        target_modules=["q_proj"],
    )
    path = tmp_path / "tune.yaml"
    path.write_text(flat.to_yaml(), encoding="utf-8")
    assert load_tune_config(path) == flat
    assert (flat.lora.r, flat.training.learning_rate, flat.lora.target_modules) == (
        8,
        1e-4,
        ["q_proj"],
    )
    assert flat.model.quantization == "4bit" and flat.lora.target_modules != "all-linear"


def test_command_line_values_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tune.yaml"
    path.write_text("name: a\ndata: {path: x.csv}\ntraining: {batch_size: 4}\n", encoding="utf-8")
    config = load_tune_config(path, batch_size=2, lr=None, name="b")
    assert (config.name, config.training.batch_size, config.data.path) == ("b", 2, "x.csv")


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"name": "../escape"}, "name: '../escape' is not a valid adapter name"),
        ({"name": "a/b"}, "is not a valid adapter name"),
        ({"lora_r": 0}, "lora.r"),
        ({"lr": -1}, "training.learning_rate"),
        ({"quantization": "3bit"}, "model.quantization"),
        ({"eval_split": 0.95}, "data.eval_split"),
        ({"format": "template"}, "format 'template' needs a template"),
        ({"target_modules": "everything"}, "lora.target_modules: give 'all-linear'"),
        ({"target_modules": ["q proj"]}, "not module names: q proj"),
        ({"packing": True, "padding_free": True}, "packing or padding_free"),
        ({"scheduler": "sometimes"}, "training.scheduler"),
    ],
)
def test_invalid_settings_name_the_field(values: dict[str, object], field: str) -> None:
    with pytest.raises(TuneConfigError, match="Invalid tuning settings") as caught:
        flat_config(**{"name": "ok", "data": "x.csv", **values})
    assert field in str(caught.value)


def test_unknown_keys_are_refused_not_ignored() -> None:
    with pytest.raises(TuneConfigError, match=r"lora.rank: unknown setting"):
        build_tune_config({"name": "a", "data": {"path": "x"}, "lora": {"rank": 8}})
    with pytest.raises(TuneConfigError, match="unknown tuning setting 'lora_rank'"):
        flat_config(name="a", data="x", lora_rank=8)


def test_unreadable_or_non_mapping_files_are_errors(tmp_path: Path) -> None:
    with pytest.raises(TuneConfigError, match="cannot read the tuning config"):
        load_tune_config(tmp_path / "missing.yaml")
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(TuneConfigError, match="must be a mapping"):
        load_tune_config(listed)


@pytest.mark.parametrize("path", sorted((ROOT / "studio" / "samples").glob("tune-*.yaml")))
def test_shipped_tune_configs_load_and_say_how_to_use_them(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# ") and "studio tune --config" in text
    config = load_tune_config(path)
    assert isinstance(config, TuneConfig)
    assert (ROOT / config.data.path).resolve().parent.name in ("sst2", "self-instruct", "sample")
