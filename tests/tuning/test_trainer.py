"""The trainer builder: device-dependent choices, step counts, and what a QLoRA step changes."""

from __future__ import annotations

import pytest

from studio.hosting import HostingPolicy
from studio.models.device import DevicePlan
from studio.settings import Settings
from studio.tuning.config import flat_config
from studio.tuning.trainer import precision_choices, total_steps
from tests.conftest import SHARED_DATA


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

    train = SHARED_DATA / "sst2" / "train.tsv"
    if not train.exists():
        pytest.skip(f"shared data missing: {train}")
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
@pytest.mark.parametrize(
    "variant",
    [
        {"quantization": "none", "packing": True},
        {"quantization": "none", "padding_free": True},
        {"quantization": "4bit", "use_dora": True},
        {"quantization": "4bit", "use_rslora": True, "gradient_checkpointing": True},
        {"quantization": "8bit", "target_modules": ["q_proj", "v_proj"]},
    ],
    ids=["packing", "padding-free", "dora-4bit", "rslora-checkpointing-4bit", "8bit-qv"],
)
def test_every_training_switch_really_trains_on_cpu(
    settings: Settings, variant: dict[str, object]
) -> None:
    import math

    from studio.models.loading import LoadRequest, load_model
    from studio.tuning.data import prepare_data
    from studio.tuning.trainer import build_trainer

    train = SHARED_DATA / "sst2" / "train.tsv"
    if not train.exists():
        pytest.skip(f"shared data missing: {train}")
    config = flat_config(
        name="variant",
        data=str(train),
        template="sst2-sentiment",
        limit=8,
        eval_split=0.0,
        batch_size=4,
        max_steps=1,
        max_length=128,
        **variant,
    )
    quantization = str(variant["quantization"])
    loaded = load_model(LoadRequest("smollm2-135m-instruct", quantization=quantization), settings)
    prepared = prepare_data(config.data, loaded.tokenizer, HostingPolicy.desktop(), seed=0)
    trainer = build_trainer(config, loaded, prepared, settings.home / "ckpt", [])
    trainer.train()
    [loss] = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert math.isfinite(loss) and loss > 0
