"""The GPU path on a real CUDA GPU: QLoRA training steps and scoring that agrees with the CPU.

What the CPU tests (tests/models/test_device_plan.py, tests/tuning/test_device_choices.py) check
by construction, run for real: the bundled SmolLM2 loads in 4-bit NF4 on the GPU, the studio's
own trainer (build_trainer, as the worker calls it) takes two QLoRA steps in the GPU's best
precision with the paged 8-bit AdamW, the loss is finite and only the adapter moves; the device
plan and the memory estimate read the real GPU; and log-likelihood scoring on the GPU agrees
with the CPU to 1e-3.

Scoring is compared in fp32 without quantization on both devices: same weights, same dtype, only
the device differs, so 1e-3 is a fair bound (bf16 alone rounds a log-prob by more than that, and
bitsandbytes' GPU and CPU 4-bit kernels are different code). Skipped without a CUDA GPU (the
`gpu` hook in tests/conftest.py); scripts/gpu_check.sh runs this module on a lent GPU machine.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from studio.hosting import HostingPolicy
from studio.models.device import detect_hardware, plan_device
from studio.models.loading import LoadRequest, load_model
from studio.settings import Settings
from studio.tuning.config import TuneConfig, flat_config
from tests import needs

pytestmark = [pytest.mark.gpu, pytest.mark.model]

SMOL = "smollm2-135m-instruct"
SHOTS = (
    "Review: a gorgeous, witty, seductive movie.\nSentiment: positive\n\n"
    "Review: the plot is nothing but boilerplate clichés.\nSentiment: negative\n\n"
)
QUERIES = [
    "it 's a charming and often affecting journey .",
    "unflinchingly bleak and desperate",
    "a dull , inept and pointless exercise in style",
    "fun",
]
PROMPTS = [f"{SHOTS}Review: {q}\nSentiment:" for q in QUERIES]
# One-token choices and multi-token ones: scoring's second pass (the tails) runs too.
CHOICES = [[" negative", " positive", " rather mixed, honestly"]] * len(PROMPTS)


def _config() -> TuneConfig:
    train = needs.shared_data("sst2", "train.tsv")
    return flat_config(
        name="gpu-smoke",
        data=str(train),
        template="sst2-sentiment",
        limit=16,
        eval_split=0.0,
        batch_size=4,
        max_steps=2,
        lr=1e-3,
        save_steps=100,
    )


def test_the_plan_and_memory_estimate_read_the_real_gpu(settings: Settings) -> None:
    import torch

    from studio.tuning.export import merge_dtype
    from studio.tuning.jobs import base_location
    from studio.tuning.memory import estimate_memory

    hardware = detect_hardware()
    ampere = torch.cuda.get_device_capability() >= (8, 0)
    assert hardware.cuda and hardware.bf16 is ampere
    plan = plan_device()
    assert plan.device == "cuda" and plan.dtype_name == ("bfloat16" if ampere else "float16")
    assert merge_dtype(plan) == ("bfloat16" if ampere else "float32")
    config = _config()
    estimate = estimate_memory(config, base_location(config.model.spec, settings), 64)
    _free, total = torch.cuda.mem_get_info()
    assert estimate.device == "cuda" and estimate.available is not None
    assert 0 < estimate.available <= total
    assert estimate.fits  # a 135M model in 4-bit fits any CUDA GPU the studio supports


def test_two_qlora_steps_on_the_gpu_train_only_the_adapter(settings: Settings) -> None:
    import torch

    bnb = needs.package("bitsandbytes", "4-bit QLoRA and the paged 8-bit AdamW")
    needs.package("trl", "the studio's trainer is TRL's SFTTrainer")
    from studio.tuning.data import prepare_data
    from studio.tuning.trainer import build_trainer

    config = _config()
    # As the worker asks: the configured quantization, device 'auto'.
    loaded = load_model(LoadRequest(SMOL, quantization=config.model.quantization), settings)
    hardware = detect_hardware()
    assert loaded.plan == plan_device(hardware=hardware) and loaded.plan.is_cuda
    q_proj = loaded.model.model.layers[0].self_attn.q_proj
    assert isinstance(q_proj, bnb.nn.Linear4bit) and q_proj.weight.quant_type == "nf4"
    assert q_proj.weight.device.type == "cuda"
    assert q_proj.compute_dtype == loaded.plan.dtype

    prepared = prepare_data(config.data, loaded.tokenizer, HostingPolicy.desktop(), seed=0)
    trainer = build_trainer(config, loaded, prepared, settings.home / "ckpt", [])
    assert (trainer.args.bf16, trainer.args.fp16) == (hardware.bf16, not hardware.bf16)
    assert not trainer.args.use_cpu
    model = trainer.model
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainer.train()

    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 2 and all(math.isfinite(loss) and loss > 0 for loss in losses)
    after = dict(model.named_parameters())
    changed = {n for n in before if not torch.equal(before[n], after[n].detach())}
    assert changed and changed <= trainable  # LoRA moved; every base tensor is bit-identical
    assert any("lora_B" in n for n in changed)
    _assert_paged_8bit_adamw(trainer.optimizer, bnb)


def _assert_paged_8bit_adamw(optimizer: Any, bnb: Any) -> None:
    import torch

    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps the real one
    assert isinstance(inner, bnb.optim.AdamW), type(inner)
    assert inner.is_paged and inner.args.optim_bits == 8
    # Adapter matrices above bitsandbytes' 4096-element threshold keep 8-bit moments.
    assert any(
        state.get("state1") is not None and state["state1"].dtype == torch.uint8
        for state in inner.state.values()
    )


def _scores(loaded: Any) -> dict[int, list[float]]:
    from studio.inference.scoring import score_choices

    return {
        example.index: [score.logprob for score in example.scores]
        for example in score_choices(loaded, PROMPTS, CHOICES, batch_rows=6)
    }


def test_scoring_on_the_gpu_agrees_with_the_cpu(settings: Settings) -> None:
    gpu = load_model(LoadRequest(SMOL, device="cuda", dtype="float32"), settings)
    cpu = load_model(LoadRequest(SMOL, device="cpu", dtype="float32"), settings)
    assert next(gpu.model.parameters()).device.type == "cuda"
    assert next(cpu.model.parameters()).device.type == "cpu"
    on_gpu, on_cpu = _scores(gpu), _scores(cpu)
    assert sorted(on_gpu) == sorted(on_cpu) == list(range(len(PROMPTS)))
    for index, expected in on_cpu.items():
        assert on_gpu[index] == pytest.approx(expected, abs=1e-3), PROMPTS[index]
        assert all(math.isfinite(value) and value < 0 for value in expected)
