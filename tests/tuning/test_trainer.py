"""The trainer builder: device-dependent choices, step counts, what a QLoRA step changes, that
the seed fixes the LoRA init, and that every training switch (DoRA, rsLoRA, target modules,
quantization, packing, padding-free, gradient checkpointing) shows by its effect on the model, the
batches, the step and the saved adapter, not merely by a finite loss."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from studio.hosting import HostingPolicy
from studio.models.device import DevicePlan
from studio.settings import Settings
from studio.tuning.config import TuneConfig, flat_config
from studio.tuning.data import packed_rows
from studio.tuning.trainer import precision_choices, total_steps
from tests import needs

if TYPE_CHECKING:
    from studio.tuning.data import PreparedData, TrainExample


def test_gpu_gets_bf16_and_paged_8bit_adamw_cpu_gets_fp32_adamw() -> None:
    assert precision_choices(DevicePlan("cuda", "bfloat16")) == {
        "bf16": True,
        "fp16": False,
        "optim": "paged_adamw_8bit",
        "use_cpu": False,
    }
    assert precision_choices(DevicePlan("cuda", "float16"))["fp16"] is True
    assert precision_choices(DevicePlan("cpu", "float32")) == {
        "bf16": False,
        "fp16": False,
        "optim": "adamw_torch",
        "use_cpu": True,
    }


def test_total_steps_counts_epochs_batches_and_accumulation() -> None:
    config = flat_config(name="a", data="x", batch_size=4, grad_accumulation=2, epochs=2)
    assert total_steps(config, 100) == 26  # ceil(100 / 8) = 13 per epoch
    assert total_steps(config, 100, world_size=2) == 14
    assert total_steps(flat_config(name="a", data="x", max_steps=7), 100) == 7


@pytest.mark.model
def test_a_qlora_step_changes_lora_weights_and_never_the_base(settings: Settings) -> None:
    import torch

    from studio.models.loading import LoadRequest, load_model
    from studio.tuning.data import prepare_data
    from studio.tuning.trainer import build_trainer

    train = needs.shared_data("sst2", "train.tsv")
    config = flat_config(
        name="inproc",
        data=str(train),
        template="sst2-sentiment",
        limit=16,
        eval_split=0.0,
        batch_size=4,
        max_steps=2,
        lr=1e-3,
        save_steps=100,
    )
    loaded = load_model(LoadRequest("smollm2-135m-instruct", quantization="4bit"), settings)
    prepared = prepare_data(config.data, loaded.tokenizer, HostingPolicy.desktop(), seed=0)
    trainer = build_trainer(config, loaded, prepared, settings.home / "ckpt", [])
    model = trainer.model
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    trainer.train()
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert changed and changed <= trainable  # LoRA moved; every base tensor is bit-identical
    assert any("lora_B" in n for n in changed)


@pytest.mark.model
def test_the_seed_fixes_the_lora_init(settings: Settings) -> None:
    """The seed setting promises the LoRA init: the same seed, the same A; another, others."""
    import torch

    from studio.models.loading import LoadRequest, load_model
    from studio.tuning.trainer import attach_adapter

    def initial_lora_a(seed: int) -> list[Any]:
        loaded = load_model(LoadRequest("smollm2-135m-instruct", quantization="none"), settings)
        config = flat_config(name="seeded", data="unused.tsv", seed=seed, target_modules=["q_proj"])
        model = attach_adapter(loaded, config)
        return [p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n]

    first = initial_lora_a(0)
    torch.rand(7)  # the global generator moves on between runs, as it does in a long process
    again, other = initial_lora_a(0), initial_lora_a(1)
    assert len(first) == len(again) == len(other) == 30  # one q_proj per block
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not any(torch.equal(a, b) for a, b in zip(first, other, strict=True))


# Every linear layer of a SmolLM2 decoder block: what "all-linear" must wrap (never lm_head).
ALL_LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
# The layer a LoRA module wraps, by quantization: the proof the base really is 4-/8-bit.
BASE_LAYER = {"none": "Linear", "4bit": "Linear4bit", "8bit": "Linear8bitLt"}


def wrapped_modules(model: Any) -> dict[str, Any]:
    """Module name -> LoRA layer, for every module PEFT gave an adapter (it has lora_A)."""
    return {name: module for name, module in model.named_modules() if hasattr(module, "lora_A")}


def check_adapter(model: Any, config: TuneConfig) -> dict[str, Any]:
    """The PEFT model carries exactly the adapter the config asks for: where, how scaled, DoRA."""
    lora = config.lora
    wanted = ALL_LINEAR if lora.target_modules == "all-linear" else set(lora.target_modules)
    wrapped = wrapped_modules(model)
    n_layers = model.get_base_model().config.num_hidden_layers
    assert {name.rsplit(".", 1)[-1] for name in wrapped} == wanted
    assert len(wrapped) == n_layers * len(wanted)  # in every block, and nowhere else
    scaling = lora.alpha / math.sqrt(lora.r) if lora.use_rslora else lora.alpha / lora.r
    assert scaling == (8.0 if lora.use_rslora else 2.0)  # alpha 32, r 16: the two really differ
    for module in wrapped.values():
        assert type(module.base_layer).__name__ == BASE_LAYER[config.model.quantization]
        assert module.scaling == {"default": pytest.approx(scaling)}
        assert ("default" in module.lora_magnitude_vector) == lora.use_dora
    return wrapped


def check_batches(trainer: Any, prepared: PreparedData, config: TuneConfig) -> None:
    """Packing puts several examples in a row; padding-free (and packing) flattens a batch."""
    import torch

    rows = trainer.train_dataset
    lengths = [len(example.input_ids) for example in prepared.train]
    training = config.training
    if training.packing:
        assert "seq_lengths" in rows.column_names, f"packing asked for, rows not packed: {rows}"
        packed = [row["seq_lengths"] for row in rows]
        assert len(rows) < len(lengths) and max(len(seqs) for seqs in packed) > 1
        assert sorted(n for seqs in packed for n in seqs) == sorted(lengths)  # none cut or lost
        assert all(sum(seqs) <= config.data.max_length for seqs in packed)
        # The Tune tab's preview of packed sequences is the trainer's own packing.
        shown = packed_rows(prepared.train, config.data.max_length, len(rows))
        assert [[i for e in seq for i in e.input_ids] for seq in shown] == rows["input_ids"]
    else:
        assert len(rows) == len(lengths) and "seq_lengths" not in rows.column_names
    take = rows.select(range(min(training.batch_size, len(rows))))
    batch = trainer.data_collator(list(take))
    n_examples = sum(len(row["seq_lengths"]) for row in take) if training.packing else len(take)
    if training.packing or training.padding_free:
        # One row, no padding, positions restarting at every example's first token.
        assert batch["input_ids"].shape == (1, sum(len(row["input_ids"]) for row in take))
        assert "attention_mask" not in batch
        assert int((batch["position_ids"] == 0).sum()) == n_examples > 1
    else:
        longest = max(len(row["input_ids"]) for row in take)
        assert batch["input_ids"].shape == (len(take), longest)
        assert not bool(torch.all(batch["attention_mask"] == 1))  # rows of 51-62 tokens: padded


def check_saved(model: Any, folder: Path, config: TuneConfig, wrapped: dict[str, Any]) -> None:
    """adapter_config.json and the weights file say the same as the trained model."""
    from safetensors import safe_open

    model.save_pretrained(folder)  # what the worker writes into adapters/<name>
    saved = json.loads((folder / "adapter_config.json").read_text())
    lora = config.lora
    assert (saved["r"], saved["lora_alpha"]) == (lora.r, lora.alpha)
    assert (saved["use_dora"], saved["use_rslora"]) == (lora.use_dora, lora.use_rslora)
    suffixes = {name.rsplit(".", 1)[-1] for name in wrapped}
    assert set(saved["target_modules"]) == suffixes
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as weights:
        keys = list(weights.keys())
    magnitudes = [key for key in keys if "lora_magnitude_vector" in key]
    assert len(magnitudes) == (len(wrapped) if lora.use_dora else 0)
    assert len([key for key in keys if "lora_B" in key]) == len(wrapped)


@pytest.mark.model
@pytest.mark.parametrize(
    "variant",
    [
        {"quantization": "none", "packing": True, "gradient_checkpointing": True},
        {"quantization": "none", "padding_free": True},
        {"quantization": "4bit", "use_dora": True},
        {"quantization": "4bit", "use_rslora": True, "gradient_checkpointing": True},
        # Not q_proj/v_proj: that is PEFT's own default for Llama, so a dropped list would pass.
        {"quantization": "8bit", "target_modules": ["v_proj", "down_proj"]},
    ],
    ids=[
        "packing-checkpointing",
        "padding-free",
        "dora-4bit",
        "rslora-checkpointing-4bit",
        "8bit-v-down",
    ],
)
def test_every_training_switch_really_trains_on_cpu(
    settings: Settings, variant: dict[str, object]
) -> None:
    """Each switch is seen by its effect on the model, the batches, the step and the saved files."""
    import torch

    from studio.models.loading import LoadRequest, load_model
    from studio.tuning.data import prepare_data
    from studio.tuning.trainer import build_trainer

    train = needs.shared_data("sst2", "train.tsv")
    config = flat_config(
        name="variant",
        data=str(train),
        template="sst2-sentiment",
        limit=8,
        eval_split=0.0,
        batch_size=4,
        max_steps=1,
        max_length=128,
        lr=1e-3,
        warmup_ratio=0.0,  # else the one step is all warmup, at learning rate 0
        **variant,
    )
    quantization = str(variant["quantization"])
    loaded = load_model(LoadRequest("smollm2-135m-instruct", quantization=quantization), settings)
    prepared = prepare_data(config.data, loaded.tokenizer, HostingPolicy.desktop(), seed=0)
    trainer = build_trainer(config, loaded, prepared, settings.home / "ckpt", [])
    model = trainer.model
    wrapped = check_adapter(model, config)
    check_batches(trainer, prepared, config)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    assert before and all("lora_" in n for n in before)
    calls: list[int] = []
    # Entering attention, inside the checkpointed forward of the first block (hooks on the block
    # itself stay outside the checkpoint; a post-hook can miss a recompute that stops early).
    inner = model.get_base_model().model.layers[0].self_attn
    hook = inner.register_forward_pre_hook(lambda *_: calls.append(1))
    trainer.train()
    hook.remove()
    # One micro-batch: the block runs once, and once more in backward when checkpointing recomputes.
    assert len(calls) == (2 if config.training.gradient_checkpointing else 1)
    [loss] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert math.isfinite(loss) and loss > 0
    after = dict(model.named_parameters())
    moved = {n for n, p in before.items() if not torch.equal(p, after[n].detach())}
    learned = {n for n in before if "lora_B" in n or "lora_magnitude_vector" in n}
    assert len(learned) == len(wrapped) * (2 if config.lora.use_dora else 1)
    assert learned <= moved  # every adapter got a gradient: none cut off by checkpointing
    check_saved(model, settings.home / "adapter", config, wrapped)


# ---------------------------------------------------------------------------------------------
# Evaluation cost


def examples(lengths: list[int], answer: int = 5) -> list[TrainExample]:
    from studio.tuning.data import TrainExample

    return [
        TrainExample(row, (("x", False),), [7] * n, [0] * (n - answer) + [1] * answer, False)
        for row, n in enumerate(lengths, start=1)
    ]


def test_default_evaluation_stays_under_its_share_and_more_can_be_asked_for() -> None:
    from studio.tuning.trainer import EVAL_SHARE, MIN_EVAL_ROWS, eval_plan

    # The run: 1,000 rows of 100-250 tokens, batch 8, a 10% eval split.
    lengths = [100 + (row * 37) % 151 for row in range(1000)]
    train, held = examples(lengths[:900]), examples(lengths[900:])
    config = flat_config(name="a", data="x")
    plan = eval_plan(config, train, held)
    assert plan is not None and (plan.every, plan.evaluations) == (11, 11)  # 113 steps
    assert 0.8 * EVAL_SHARE < plan.share <= EVAL_SHARE  # the budget used, not exceeded
    assert MIN_EVAL_ROWS <= len(plan.rows) < len(held)
    assert plan.eval_tokens == sum(held[i].n_tokens for i in plan.rows)
    assert plan.train_tokens == pytest.approx(113 * 8 * sum(lengths[:900]) / 900, abs=1)
    text = plan.describe()
    assert f"11 evaluations × {len(plan.rows)} of 100 eval rows" in text
    assert f"≈ {plan.share:.1%} of the run's compute" in text and "set eval_rows" in text
    everything = eval_plan(flat_config(name="a", data="x", eval_rows=100), train, held)
    assert everything is not None and everything.rows == tuple(range(100))
    assert everything.share > 2.5 * EVAL_SHARE and "eval_rows 100 as set" in everything.describe()
    other_seed = eval_plan(flat_config(name="a", data="x", seed=1), train, held)
    assert other_seed is not None and other_seed.rows != plan.rows  # a seeded subset
    assert eval_plan(config, train, []) is None


@pytest.mark.model
def test_the_stated_evaluation_is_the_schedule_the_run_follows(settings: Settings) -> None:
    """Evaluations counted and tokens read during a real run (and the worker's final
    evaluation) are the plan's; its batches are length-grouped."""
    from studio.models.loading import LoadRequest, load_model
    from studio.tuning.data import prepare_data
    from studio.tuning.trainer import EVAL_TOKEN_COST, build_trainer, eval_plan

    config = flat_config(
        name="evals",
        data=str(needs.shared_data("sst2", "train.tsv")),
        template="sst2-sentiment",
        limit=40,
        eval_split=0.5,
        batch_size=2,
        max_steps=2,
        eval_steps=1,
    )
    loaded = load_model(LoadRequest("smollm2-135m-instruct", quantization="4bit"), settings)
    prepared = prepare_data(config.data, loaded.tokenizer, HostingPolicy.desktop(), seed=0)
    plan = eval_plan(config, prepared.train, prepared.eval)
    assert plan is not None and len(plan.rows) < len(prepared.eval)  # the cap applies
    trainer = build_trainer(config, loaded, prepared, settings.home / "ckpt", [])
    check_length_grouping(trainer)
    read: list[int] = []  # tokens of every forward pass the model runs outside training
    model = trainer.model
    hook = model.register_forward_pre_hook(
        lambda m, _a, kw: None if m.training else read.append(int(kw["attention_mask"].sum())),
        with_kwargs=True,
    )
    trainer.train()
    trainer.evaluate()  # the worker's final evaluation
    hook.remove()
    evaluations = sum(1 for entry in trainer.state.log_history if "eval_loss" in entry)
    assert evaluations == plan.evaluations == 3  # steps 1 and 2, then the final one
    assert sum(read) == plan.evaluations * plan.eval_tokens
    trained = next(
        e["num_tokens"] for e in reversed(trainer.state.log_history) if "num_tokens" in e
    )
    share = sum(read) * EVAL_TOKEN_COST / (trained + sum(read) * EVAL_TOKEN_COST)
    assert plan.share == pytest.approx(share, rel=0.25)  # the estimate of trained tokens


def check_length_grouping(trainer: Any) -> None:
    """The run's sampler is transformers' length-grouped one, through TRL's trainer."""
    from transformers.trainer_pt_utils import LengthGroupedSampler

    assert isinstance(trainer._get_train_sampler(), LengthGroupedSampler)


def test_batches_are_length_grouped_unless_random_or_without_padding(tmp_path: Path) -> None:
    from studio.tuning.trainer import training_arguments

    def sampling(**values: Any) -> str:
        config = flat_config(name="a", data="x", max_steps=2, **values)
        args = training_arguments(config, DevicePlan("cpu", "float32"), tmp_path, 10, None)
        return str(args.train_sampling_strategy)

    assert sampling() == "group_by_length"
    assert sampling(batch_order="random") == "random"
    # Packed and padding-free batches have no padding to save.
    assert sampling(packing=True) == sampling(padding_free=True) == "random"
