"""Adapter folders: names, metadata, listing, loading through the model layer, merge and push.

The adapter is real but untrained: SmolLM2 wrapped by PEFT with random (non-zero) LoRA weights,
so it changes the logits like a trained one would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from studio.models.adapters import (
    AdapterCard,
    AdapterError,
    adapter_path,
    is_adapter_folder,
    list_adapters,
    read_adapter,
)
from studio.models.catalog import list_models
from studio.models.errors import ModelNotFoundError
from studio.models.loading import LoadRequest, load_model
from studio.models.registry import resolve_spec
from studio.settings import Settings, load_settings
from studio.tuning.card import write_adapter_metadata
from studio.tuning.config import flat_config
from studio.tuning.export import merge_adapter, push_adapter

SMOL = "smollm2-135m-instruct"
TEMPLATE_YAML = "name: sentiment\nmode: completion\ntemplate: 'Review: {{ text }}\\nLabel:'\n"
PROMPT = "The capital of France is"


def make_card(name: str, base_location: str, **changes: Any) -> AdapterCard:
    config = flat_config(name=name, data="reviews.csv", lora_r=4, max_steps=10, seed=3)
    values: dict[str, Any] = dict(
        name=name,
        base_model=SMOL,
        base_location=base_location,
        quantization="4bit",
        config=config.to_dict(),
        template_name="sentiment",
        template_hash="abc123",
        template_yaml=TEMPLATE_YAML,
        dataset_name="reviews.csv",
        dataset_path="/data/reviews.csv",
        dataset_hash="f00d",
        n_train=90,
        n_eval=10,
        metrics={"train_loss": 1.5, "eval_loss": 1.234567, "steps": 10, "tokens_per_s": None},
        run_id=7,
        created_at="2025-06-01T12:00:00+00:00",
    )
    values.update(changes)
    return AdapterCard(**values)


# --- names and folders (no model) ------------------------------------------------------------


@pytest.mark.parametrize("name", ["../x", "a/b", "/abs/path", "", ".", "..", ".hidden", "a b"])
def test_bad_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(AdapterError, match="not a valid adapter name"):
        adapter_path(tmp_path, name)


def test_good_name_and_symlink_escape(tmp_path: Path) -> None:
    root = tmp_path / "adapters"
    root.mkdir()
    assert adapter_path(root, "my-adapter_v1.2") == root / "my-adapter_v1.2"
    (tmp_path / "outside").mkdir()
    (root / "sneaky").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(AdapterError, match="outside"):
        adapter_path(root, "sneaky")
    (root / "inside").symlink_to(root / "my-adapter_v1.2")  # stays within: allowed
    assert adapter_path(root, "inside") == root / "inside"


def test_metadata_files_and_model_card(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    write_adapter_metadata(folder, make_card("demo", "/models/smol"))
    studio = json.loads((folder / "studio.json").read_text())
    assert studio["base_model"] == SMOL and studio["metrics"]["eval_loss"] == 1.234567
    assert yaml.safe_load((folder / "training_config.yaml").read_text())["lora"]["r"] == 4
    assert (folder / "prompt_template.yaml").read_text() == TEMPLATE_YAML
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temp files left
    readme = (folder / "README.md").read_text()
    front = yaml.safe_load(readme.split("---")[1])
    assert front == {
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct",
        "library_name": "peft",
        "tags": ["lora", "qlora", "instruct-studio"],
        "pipeline_tag": "text-generation",
    }
    for needle in (
        "reviews.csv",
        "`f00d`",
        "90 for training, 10 held out",
        "| LoRA rank r | 4 |",
        "| Learning rate | 0.0002 |",
        "| Epochs / max steps | 1.0 / 10 |",
        "| Seed | 3 |",
        "| eval_loss | 1.235 |",
        "| tokens_per_s | - |",
        "**sentiment** (hash `abc123`)",
        "Review: {{ text }}",
        "PeftModel.from_pretrained(base",
        'AutoModelForCausalLM.from_pretrained("/models/smol")',
        "tuning run #7",
    ):
        assert needle in readme, needle


def test_card_without_template_or_hub_base(tmp_path: Path) -> None:
    card = make_card(
        "plain", "/m", base_model="/my/local/model", quantization="none", template_yaml=None
    )
    write_adapter_metadata(tmp_path / "plain", card)
    readme = (tmp_path / "plain" / "README.md").read_text()
    front = yaml.safe_load(readme.split("---")[1])
    assert "base_model" not in front and "qlora" not in front["tags"]
    assert "chat template" in readme
    assert not (tmp_path / "plain" / "prompt_template.yaml").exists()


def test_read_and_list_skip_broken_and_temp_folders(tmp_path: Path) -> None:
    root = tmp_path / "adapters"
    for name, created in (("old", "2024-01-01T00:00:00+00:00"), ("new", "2025-01-01T00:00:00")):
        folder = root / name
        write_adapter_metadata(folder, make_card(name, "/m", created_at=created))
        (folder / "adapter_config.json").write_text('{"r": 4}')
        (folder / "adapter_model.safetensors").write_bytes(b"x" * 10)
    shutil.copytree(root / "new", root / ".new.tmp-1")  # a run still writing
    (root / "broken").mkdir()
    (root / "broken" / "adapter_config.json").write_text("{}")  # no weights
    (root / "notes").mkdir()  # not an adapter at all
    assert [info.name for info in list_adapters(root)] == ["new", "old"]
    assert is_adapter_folder(root / "broken") and not is_adapter_folder(root / "notes")
    with pytest.raises(AdapterError, match="no weights"):
        read_adapter(root / "broken")
    with pytest.raises(AdapterError, match=r"adapter_config\.json is missing"):
        read_adapter(root / "notes")
    info = read_adapter(root / "old")
    assert info.card is not None and info.base_model == SMOL and info.eval_loss == 1.234567
    assert info.size_bytes > 10 and list_adapters(tmp_path / "nothing-here") == []


def test_push_needs_a_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(AdapterError, match="give --token or set HF_TOKEN"):
        push_adapter(tmp_path, "me/demo", None)


# --- a real adapter on the bundled model -----------------------------------------------------


@dataclass
class Env:
    settings: Settings
    folder: Path
    input_ids: Any
    base_logits: Any
    adapter_logits: Any


def logits(model: Any, input_ids: Any) -> Any:
    import torch

    with torch.no_grad():
        return model(input_ids=input_ids).logits.float()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Any:
    """One real adapter for the module (model loads are the slow part)."""
    import torch
    from peft import LoraConfig, get_peft_model

    home = tmp_path_factory.mktemp("adapter-home")
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    os.symlink(model_home / "models", home / "models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
        base = load_model(LoadRequest(SMOL), settings)
        input_ids = base.tokenizer(PROMPT, return_tensors="pt").input_ids
        base_logits = logits(base.model, input_ids)
        torch.manual_seed(0)
        config = LoraConfig(r=4, target_modules="all-linear", init_lora_weights=False)
        peft_model = get_peft_model(base.model, config)
        folder = adapter_path(settings.adapters_dir, "demo")
        peft_model.save_pretrained(folder)
        base.tokenizer.save_pretrained(folder)
        write_adapter_metadata(folder, make_card("demo", base.location))
        yield Env(settings, folder, input_ids, base_logits, logits(peft_model, input_ids))


@pytest.mark.model
def test_peft_points_at_the_loadable_base(env: Env) -> None:
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base_location = read_adapter(env.folder).peft_config["base_model_name_or_path"]
    assert base_location == str(env.settings.models_dir / SMOL)
    # Plain PEFT, no studio code: the folder is a standard adapter.
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base_location), str(env.folder)
    )
    assert logits(model, env.input_ids).allclose(env.adapter_logits, atol=1e-4)


@pytest.mark.model
@pytest.mark.parametrize("spec_of", ["relative", "absolute", "shorthand"])
def test_adapter_specs_resolve(env: Env, spec_of: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(env.settings.home)  # adapters/demo exists here relative to the cwd too
    spec = {"relative": "adapters/demo", "absolute": str(env.folder), "shorthand": "adapter:demo"}
    source = resolve_spec(spec[spec_of], env.settings.adapters_dir)
    assert source.kind == "adapter" and source.base_spec == SMOL
    assert source.path == env.folder.resolve() and source.spec == "adapters/demo"


@pytest.mark.model
def test_adapters_spec_from_another_cwd(env: Env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./adapters: falls back to settings.adapters_dir
    assert resolve_spec("adapters/demo", env.settings.adapters_dir).path == env.folder.resolve()


@pytest.mark.model
def test_load_adapter_full_precision(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    from peft import PeftModel

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    messages: list[str] = []
    loaded = load_model(LoadRequest("adapter:demo"), env.settings, messages.append)
    assert isinstance(loaded.model, PeftModel) and not loaded.model.training
    assert loaded.source.kind == "adapter" and loaded.source.base_spec == SMOL
    assert loaded.location == str(env.folder.resolve())
    assert loaded.base_location == str(env.settings.models_dir / SMOL)
    assert loaded.has_chat_template and loaded.tokenizer.pad_token is not None
    assert any("Applying adapter" in m for m in messages)
    out = logits(loaded.model, env.input_ids)
    assert out.allclose(env.adapter_logits, atol=1e-4)
    assert not out.allclose(env.base_logits, atol=1e-2)
    # Generation goes through the same model object the studio's engines use.
    generated = loaded.model.generate(input_ids=env.input_ids, max_new_tokens=3, do_sample=False)
    assert generated.shape[1] == env.input_ids.shape[1] + 3


@pytest.mark.model
def test_load_adapter_on_a_4bit_base(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    import bitsandbytes as bnb

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(env.settings.home)  # adapters/demo is this module's, not a checkout's own
    base4 = load_model(LoadRequest(SMOL, quantization="4bit"), env.settings)
    four = load_model(LoadRequest("adapters/demo", quantization="4bit"), env.settings)
    q_proj = four.model.base_model.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj.base_layer, bnb.nn.Linear4bit) and "default" in q_proj.lora_A
    assert four.footprint_bytes < 0.5 * 538_000_000
    out, base_out = logits(four.model, env.input_ids), logits(base4.model, env.input_ids)
    assert not out.allclose(base_out, atol=1e-2)
    # NF4 rounds the base, yet the adapter's effect survives: closer to fp32 adapter than base.
    to_adapter = (out - env.adapter_logits).abs().mean()
    to_base = (out - env.base_logits).abs().mean()
    assert to_adapter < to_base


@pytest.mark.model
def test_foreign_adapter_without_studio_metadata(env: Env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # An adapters folder of this test's own: the module's (which other tests list) stays as is.
    adapters = tmp_path / "adapters"
    shutil.copytree(env.folder, adapters / "demo")
    foreign = adapters / "foreign"
    foreign.mkdir()
    for name in ("adapter_config.json", "adapter_model.safetensors"):
        shutil.copy(env.folder / name, foreign / name)
    info = read_adapter(foreign)
    assert info.card is None and info.base_model == str(env.settings.models_dir / SMOL)
    assert {a.name for a in list_adapters(adapters)} == {"demo", "foreign"}
    loaded = load_model(LoadRequest(str(foreign)), env.settings)
    assert loaded.source.base_spec == info.base_model
    # No tokenizer files in the folder: the base's tokenizer is used.
    assert loaded.has_chat_template
    assert logits(loaded.model, env.input_ids).allclose(env.adapter_logits, atol=1e-4)


@pytest.mark.model
def test_missing_base_offline_is_explained(env: Env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    orphan = tmp_path / "orphan"
    shutil.copytree(env.folder, orphan)
    write_adapter_metadata(
        orphan,
        make_card("orphan", "nobody-here/no-such-model", base_model="nobody-here/no-such-model"),
    )
    with pytest.raises(ModelNotFoundError) as info:
        load_model(LoadRequest(str(orphan)), env.settings)
    text = str(info.value)
    assert "needs its base model 'nobody-here/no-such-model'" in text and "offline" in text


@pytest.mark.model
def test_catalog_lists_the_adapter(env: Env, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    entry = demo_entry(env)
    assert entry.spec == "adapters/demo" and entry.state == "ready"
    assert entry.note == f"LoRA on {SMOL} · eval loss 1.235"
    assert resolve_spec(entry.spec, env.settings.adapters_dir).path == env.folder.resolve()
    # With a different adapters/demo in the cwd, the spec must not point at that one.
    shutil.copytree(env.folder, tmp_path / "adapters" / "demo")
    assert demo_entry(env).spec == str(env.folder.resolve())


def demo_entry(env: Env) -> Any:
    entries = list_models(env.settings.models_dir, env.settings.adapters_dir)
    return next(e for e in entries if e.source == "adapter" and e.spec.endswith("demo"))


@pytest.mark.model
def test_merge_matches_base_plus_adapter(env: Env, tmp_path: Path, monkeypatch) -> None:
    from transformers import AutoModelForCausalLM

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    out = merge_adapter(env.folder, tmp_path / "merged", env.settings)
    assert out == (tmp_path / "merged").resolve()
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert "merge_and_unload" in (out / "README.md").read_text()
    assert not (out / "adapter_config.json").exists()
    merged = AutoModelForCausalLM.from_pretrained(out)
    assert logits(merged, env.input_ids).allclose(env.adapter_logits, atol=1e-4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merged"]  # no temp folder left
    with pytest.raises(AdapterError, match="not empty"):
        merge_adapter(env.folder, out, env.settings)


def test_push_offline_is_explained_without_the_token(tmp_path, monkeypatch) -> None:
    folder = fake_folder(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(AdapterError, match="cannot be reached") as info:
        push_adapter(folder, "me/demo", "hf_secret_token_123")
    assert "copy the adapter folder" in str(info.value)
    assert "hf_secret_token_123" not in str(info.value)


def test_push_network_failure_is_explained(tmp_path, monkeypatch) -> None:
    import httpx
    from huggingface_hub import HfApi

    folder = fake_folder(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token_456")
    calls: list[str] = []

    def unreachable(self: Any, repo_id: str, **kwargs: Any) -> Any:
        calls.append(repo_id)
        raise httpx.ConnectError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(HfApi, "create_repo", unreachable)
    with pytest.raises(AdapterError, match="cannot be reached") as info:
        push_adapter(folder, "me/demo", None)
    assert calls == ["me/demo"] and "hf_secret_token_456" not in str(info.value)
    with pytest.raises(AdapterError, match="ORG/NAME"):
        push_adapter(folder, "not a repo", "tok")


def test_push_uploads_the_folder(tmp_path, monkeypatch) -> None:
    from huggingface_hub import HfApi

    folder = fake_folder(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    seen: dict[str, Any] = {}
    monkeypatch.setattr(
        HfApi,
        "create_repo",
        lambda self, repo_id, **kw: seen.update(create=kw) or f"https://hf.co/{repo_id}",
    )
    monkeypatch.setattr(HfApi, "upload_folder", lambda self, **kw: seen.update(upload=kw))
    assert push_adapter(folder, "me/demo", "tok") == "https://hf.co/me/demo"
    assert seen["create"]["private"] is True and seen["upload"]["folder_path"] == folder


def fake_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "demo"
    write_adapter_metadata(folder, make_card("demo", "/m"))
    (folder / "adapter_config.json").write_text('{"r": 4, "base_model_name_or_path": "/m"}')
    (folder / "adapter_model.safetensors").write_bytes(b"x")
    return folder


# --- the CLI ---------------------------------------------------------------------------------


def studio(*args: str, adapters_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STUDIO_HOME": str(adapters_dir.parent / "home"),
        "STUDIO_ADAPTERS_DIR": str(adapters_dir),
        "HF_HUB_OFFLINE": "1",
    }
    env.pop("HF_TOKEN", None)
    command = [str(Path(sys.executable).with_name("studio")), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env)


def test_cli_list_show_and_errors(tmp_path: Path) -> None:
    root = tmp_path / "adapters"
    fake_folder(root)
    listed = studio("adapters", "list", "--json", adapters_dir=root)
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert row["name"] == "demo" and row["base_model"] == SMOL and row["eval_loss"] == 1.234567
    table = studio("adapters", "list", adapters_dir=root).stdout
    assert "EVAL LOSS" in table and "1.2346" in table
    shown = studio("adapters", "show", "demo", adapters_dir=root)
    assert shown.returncode == 0 and "reviews.csv (f00d)" in shown.stdout
    for args, needle in (
        (("show", "nope"), "no adapter 'nope'"),
        (("show", "../etc"), "not a valid adapter name"),
        (("push", "demo", "--repo", "me/demo"), "give --token or set HF_TOKEN"),
        (("push", "demo", "--repo", "me/demo", "--token", "hf_x"), "cannot be reached"),
        (("merge", "demo", "--output", str(root)), "not empty"),
    ):
        result = studio("adapters", *args, adapters_dir=root)
        assert result.returncode == 2, (args, result.stderr)
        assert "error:" in result.stderr and needle in result.stderr, result.stderr
        assert "Traceback" not in result.stderr and "hf_x" not in result.stderr
