"""Preference tuning trains for real on the bundled SmolLM2 on CPU, on 16 pairs of the demo data
(../shared/data/preference/dpo_en_demo.json) cut to 128 tokens: DPO and ORPO (on the full-precision
base: on CPU the 4-bit base's packed weights compared unequal after a DPO step, not yet explained)
move only LoRA tensors and raise the chosen-minus-rejected margin on the pairs they trained on;
DPO's reference is the base with the adapter disabled (no second model; a fresh adapter scores
chance, 0.5, before training); TRL trains on exactly the tokens studio.tuning.preference_data
made of the previewed strings; the adapter reloads with plain PEFT; a run continued from an SFT
adapter starts from its weights with a frozen copy as reference and saves one adapter; and
`studio tune --method dpo` runs the whole job (worker, live preference curves, card, --json with
the held-out preference accuracy before and after)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from studio.hosting import HostingPolicy
from studio.settings import Settings
from studio.tuning.config import TuneConfig, TuneConfigError, flat_config
from tests import needs
from tests.tuning.test_cli_tune import studio

pytestmark = pytest.mark.model
SMOL = "smollm2-135m-instruct"


@pytest.fixture(scope="module")
def pairs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The 20 shortest single-turn pairs of the demo data (16 train, 4 held out)."""
    demo = needs.shared_data("preference", "dpo_en_demo.json")
    rows = json.loads(demo.read_text(encoding="utf-8"))

    def size(row: dict[str, Any]) -> int:
        answers = max(len(row["chosen"]["value"]), len(row["rejected"]["value"]))
        return len(row["conversations"][-1]["value"]) + answers

    short = [
        r
        for r in rows
        if len(r["conversations"]) == 1 and len(r["conversations"][0]["value"]) < 300
    ]
    path = tmp_path_factory.mktemp("pairs") / "pairs.json"
    path.write_text(json.dumps(sorted(short, key=size)[:20]), encoding="utf-8")
    return path


def config_for(pairs: Path, method: str, quantization: str, **extra: Any) -> TuneConfig:
    values = dict(
        name=f"{method}-test",
        data=str(pairs),
        method=method,
        quantization=quantization,
        max_length=128,
        eval_split=0.2,
        batch_size=4,
        max_steps=4,
        lr=1e-3,
        warmup_ratio=0.0,
        save_steps=100,
        eval_steps=100,
        lora_r=8,
        lora_alpha=16,
    )
    return flat_config(**{**values, **extra})


def build(settings: Settings, config: TuneConfig) -> tuple[Any, Any, str]:
    from studio.models.loading import LoadRequest, load_model
    from studio.tuning.preference import build_preference_trainer, prepare_preference

    request = LoadRequest(SMOL, quantization=config.model.quantization)
    loaded = load_model(request, settings)
    prepared = prepare_preference(config, loaded.tokenizer, HostingPolicy.desktop(), settings)
    trainer = build_preference_trainer(
        config, loaded, prepared, settings.home / "ckpt", [], settings.adapters_dir
    )
    return trainer, prepared, loaded.location


def lora_state(model: Any, adapter: str = "default") -> dict[str, Any]:
    from peft import get_peft_model_state_dict

    state = get_peft_model_state_dict(model, adapter_name=adapter)
    return {name: tensor.detach().clone().float() for name, tensor in state.items()}


def train_and_diff(trainer: Any) -> set[str]:
    """Train; the names of the parameters that changed (each must be trainable LoRA)."""
    import torch

    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    trainer.train()
    changed = {n for n, p in model.named_parameters() if not torch.equal(before[n], p.detach())}
    assert changed and changed <= trainable  # LoRA moved; every base tensor is bit-identical
    return changed


def test_dpo_raises_the_margin_and_reloads_with_plain_peft(settings: Settings, pairs: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from studio.tuning.preference import adapter_to_save, preference_accuracy

    config = config_for(pairs, "dpo", "none")
    trainer, prepared, location = build(settings, config)
    tokens = trainer.train_dataset
    for row, example in enumerate(prepared.train):  # TRL trains on our strings' exact tokens
        assert tokens[row]["prompt_ids"] == example.prompt_ids
        assert tokens[row]["chosen_ids"] == example.chosen_ids
        assert tokens[row]["rejected_ids"] == example.rejected_ids
    model = trainer.model
    assert trainer.ref_model is None and list(model.peft_config) == ["default"]
    before = preference_accuracy(model, prepared.train, config)
    assert before is not None and (before["accuracy"], before["reward_margin"]) == (0.5, 0.0)
    train_and_diff(trainer)
    after = preference_accuracy(model, prepared.train, config)
    assert after is not None and after["reward_margin"] > 0.05
    assert after["logp_margin"] > before["logp_margin"] and after["accuracy"] > 0.5
    adapter_to_save(trainer)
    folder = settings.adapters_dir / "dpo-test"
    model.save_pretrained(folder)
    base = AutoModelForCausalLM.from_pretrained(location)  # plain transformers + PEFT
    reloaded = PeftModel.from_pretrained(base, str(folder))
    trained, loaded = lora_state(model), lora_state(reloaded)
    assert trained.keys() == loaded.keys()
    assert all(torch.allclose(trained[k], loaded[k], atol=1e-2) for k in trained)


def test_orpo_trains_without_a_reference_and_raises_the_log_odds_margin(
    settings: Settings, pairs: Path
) -> None:
    from studio.tuning.preference import preference_accuracy

    config = config_for(pairs, "orpo", "none")
    trainer, prepared, _location = build(settings, config)
    assert not hasattr(trainer, "ref_model") or trainer.ref_model is None
    before = preference_accuracy(trainer.model, prepared.train, config)
    train_and_diff(trainer)
    after = preference_accuracy(trainer.model, prepared.train, config)
    assert before is not None and after is not None
    assert after["reward_margin"] > before["reward_margin"]  # the log-odds margin
    assert after["logp_margin"] > before["logp_margin"]


def sft_adapter(settings: Settings, name: str) -> Path:
    """An SFT-style adapter of the bundled model with non-zero LoRA weights, and its card."""
    import torch
    from peft import LoraConfig, get_peft_model

    from studio.models.adapters import AdapterCard, adapter_path
    from studio.models.loading import LoadRequest, load_model
    from studio.tuning.card import write_adapter_metadata

    loaded = load_model(LoadRequest(SMOL, quantization="none"), settings)
    torch.manual_seed(0)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    model = get_peft_model(loaded.model, lora)
    folder = adapter_path(settings.adapters_dir, name)
    model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    card = AdapterCard(
        name=name,
        base_model=SMOL,
        base_location=loaded.location,
        quantization="none",
        config={},
        template_name=None,
        template_hash=None,
        template_yaml=None,
        dataset_name="t",
        dataset_path=None,
        dataset_hash="0",
        n_train=1,
        n_eval=0,
    )
    write_adapter_metadata(folder, card)
    return folder


def test_dpo_continues_from_an_sft_adapter_with_it_as_the_reference(
    settings: Settings, pairs: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    from studio.tuning.preference import adapter_to_save, preference_accuracy, start_adapter

    folder = sft_adapter(settings, "sft")
    config = config_for(pairs, "dpo", "none", from_adapter="adapters/sft", max_steps=2)
    wrong = config.model_copy(update={"model": config.model.model_copy(update={"spec": "x/y"})})
    with pytest.raises(TuneConfigError, match="was trained on smollm2-135m-instruct, not x/y"):
        start_adapter(wrong, settings.adapters_dir)
    trainer, prepared, _location = build(settings, config)
    model = trainer.model
    assert sorted(model.peft_config) == ["default", "ref"]  # the frozen starting point
    start = lora_state(model)
    saved = load_file(str(folder / "adapter_model.safetensors"))
    assert all(torch.equal(start[k], saved[k].float()) for k in saved)
    before = preference_accuracy(model, prepared.eval, config)
    assert before is not None and before["accuracy"] == 0.5  # the policy is its reference
    ref_before = lora_state(model, "ref")
    train_and_diff(trainer)
    assert all(torch.equal(ref_before[k], v) for k, v in lora_state(model, "ref").items())
    assert any(not torch.equal(start[k], v) for k, v in lora_state(model).items())
    adapter_to_save(trainer)
    out = settings.adapters_dir / "continued"
    model.save_pretrained(out)
    assert list(model.peft_config) == ["default"] and not (out / "ref").exists()


def test_studio_tune_dpo_runs_the_whole_job(
    settings: Settings, pairs: Path, tmp_path: Path
) -> None:
    home = settings.home
    out = tmp_path / "tune.json"
    result = studio(
        "tune", "--model", SMOL, "--data", str(pairs), "--output", "adapters/cli-dpo",
        "--method", "dpo", "--beta", "0.2", "--quantization", "none", "--max-steps", "2",
        "--lr", "1e-3", "--batch-size", "4", "--max-length", "128", "--eval-split", "0.2",
        "--lora-r", "4", "--json", str(out),
        home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["status"] == "completed" and report["method"] == "dpo"
    assert report["adapter_path"] == str(home / "adapters" / "cli-dpo")
    assert isinstance(report["final_loss"], float)
    accuracy = report["preference_accuracy"]
    assert accuracy["before"] == 0.5 and 0.0 <= accuracy["after"] <= 1.0
    assert report["summary"]["heldout_pairs"] == 4 and report["summary"]["beta"] == 0.2
    folder = home / "adapters" / "cli-dpo"
    card = (folder / "README.md").read_text(encoding="utf-8")
    assert "| Method | dpo |" in card and "| Beta | 0.2 |" in card
    from studio.store import Store

    with Store(f"sqlite:///{home / 'studio.db'}") as store:
        [run] = store.list_tuning_runs()
        assert "rewards/margins" in run.progress["preference"]
        curves = (Path(run.work_dir) / "preference_metrics.jsonl").read_text().splitlines()
    points = [json.loads(line) for line in curves]
    assert any("rewards/margins" in point for point in points)  # train points
    assert any("eval_rewards/margins" in point for point in points)  # held-out points
