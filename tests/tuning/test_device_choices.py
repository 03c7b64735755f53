"""Tuning's device-dependent choices, for a bf16 GPU, an fp16-only GPU and a CPU, checked on CPU.

From the hardware through the device plan to what training really gets: mixed precision and the
optimizer in TRL's SFTConfig, the memory estimate's parts (exact numbers from its formula for a
small known shape) and the dtype an adapter is merged in.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.models.device import Hardware, plan_device
from studio.tuning.config import TuneConfig, flat_config
from studio.tuning.export import merge_dtype
from studio.tuning.memory import ModelShape, estimate_on
from studio.tuning.trainer import precision_choices, training_arguments

AMPERE = Hardware(cuda=True, bf16=True)
T4 = Hardware(cuda=True, bf16=False)
NO_GPU = Hardware(cuda=False)
HARDWARE = [AMPERE, T4, NO_GPU]
IDS = ["bf16-gpu", "fp16-gpu", "cpu"]

PRECISION = [
    {"bf16": True, "fp16": False, "optim": "paged_adamw_8bit", "use_cpu": False},
    {"bf16": False, "fp16": True, "optim": "paged_adamw_8bit", "use_cpu": False},
    {"bf16": False, "fp16": False, "optim": "adamw_torch", "use_cpu": True},
]


@pytest.mark.parametrize(("hardware", "expected"), zip(HARDWARE, PRECISION, strict=True), ids=IDS)
def test_precision_and_optimizer_follow_the_hardware(
    hardware: Hardware, expected: dict[str, object]
) -> None:
    assert precision_choices(plan_device(hardware=hardware)) == expected


@pytest.mark.parametrize(("hardware", "expected"), zip(HARDWARE, PRECISION, strict=True), ids=IDS)
def test_the_sft_config_really_carries_them(
    hardware: Hardware,
    expected: dict[str, object],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import transformers.training_args

    # Stand-in for what cannot run here: a bf16-capable GPU. transformers refuses bf16=True
    # when it finds none, which on this CPU-only machine is always.
    monkeypatch.setattr(transformers.training_args, "is_torch_bf16_gpu_available", lambda: True)
    config = flat_config(name="d", data="x.csv", max_steps=2)
    args = training_arguments(config, plan_device(hardware=hardware), tmp_path, 10, None)
    got = {
        "bf16": args.bf16,
        "fp16": args.fp16,
        "optim": str(getattr(args.optim, "value", args.optim)),
        "use_cpu": args.use_cpu,
    }
    assert got == expected


# A small, known architecture: 8,000 weights in quantizable linears, 2,000 elsewhere.
SHAPE = ModelShape(
    n_params=10_000,
    linear_params=8_000,
    lora_params_per_rank=500,
    hidden=64,
    layers=2,
    heads=4,
    vocab=1_000,
)
SEQ_LEN = 32  # with batch_size 2: 64 tokens a step


def _config(quantization: str) -> TuneConfig:
    return flat_config(name="m", data="x.csv", quantization=quantization, lora_r=8, batch_size=2)


@pytest.mark.parametrize("hardware", [AMPERE, T4], ids=["bf16-gpu", "fp16-gpu"])
def test_memory_estimate_on_a_gpu(hardware: Hardware) -> None:
    estimate = estimate_on(
        plan_device(hardware=hardware), SHAPE, _config("4bit"), SEQ_LEN, available=80 * 2**30
    )
    assert estimate.parts == {
        "base weights": 8_500,  # 8,000 x 0.5625 B (NF4 + scales) + 2,000 x 2 B (16-bit)
        "adapter + optimizer": 40_000,  # 500 x r 8 = 4,000 LoRA params x 10 B (8-bit moments)
        "activations": 278_528,  # 64 tokens x 64 hidden x 34 B x (2 B / 2) x 2 layers
        "logits": 768_000,  # 64 tokens x 1,000 vocab x 4 B x 3 copies
        "runtime": int(0.6 * 2**30),  # CUDA context
    }
    assert estimate.device == "cuda" and estimate.available == 80 * 2**30 and estimate.fits


def test_memory_estimate_on_cpu() -> None:
    estimate = estimate_on(
        plan_device(hardware=NO_GPU), SHAPE, _config("4bit"), SEQ_LEN, available=2**30
    )
    assert estimate.parts == {
        "base weights": 12_500,  # 8,000 x 0.5625 B + 2,000 x 4 B (fp32)
        "adapter + optimizer": 64_000,  # 4,000 LoRA params x 16 B (fp32 weights, grads, moments)
        "activations": 557_056,  # 64 x 64 x 34 B x (4 B / 2) x 2 layers
        "logits": 768_000,
        "runtime": int(1.25 * 2**30),  # the measured CPU training process
    }
    assert estimate.device == "cpu" and estimate.fits is False  # 1.25 GiB overhead > 1 GiB


def test_unquantized_base_weights_take_the_plan_dtype() -> None:
    gpu = estimate_on(plan_device(hardware=AMPERE), SHAPE, _config("none"), SEQ_LEN, None)
    cpu = estimate_on(plan_device(hardware=NO_GPU), SHAPE, _config("none"), SEQ_LEN, None)
    assert gpu.parts["base weights"] == 20_000  # 10,000 weights x 2 B
    assert cpu.parts["base weights"] == 40_000  # 10,000 weights x 4 B
    assert gpu.fits is None and "unknown" in gpu.describe()


@pytest.mark.parametrize(
    ("hardware", "dtype"),
    [(AMPERE, "bfloat16"), (T4, "float32"), (NO_GPU, "float32")],
    ids=IDS,
)
def test_merge_dtype(hardware: Hardware, dtype: str) -> None:
    # fp16 would lose precision in the merged sum, so an fp16-only GPU merges in fp32.
    assert merge_dtype(plan_device(hardware=hardware)) == dtype
