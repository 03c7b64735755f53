"""The device plan and the load arguments it implies, for a bf16 GPU, an fp16-only GPU and a CPU.

The hardware is passed in as a `Hardware` value, so every CUDA choice is checked on a machine
without a GPU: the dtype, the 4-bit/8-bit BitsAndBytesConfig, device_map and the dtype kwarg.
No model weights are read.
"""

from __future__ import annotations

import pytest

from studio.models.device import DevicePlan, Hardware, detect_hardware, plan_device
from studio.models.loading import LoadRequest, load_kwargs

AMPERE = Hardware(cuda=True, bf16=True)  # e.g. A100, RTX 30xx, H100
T4 = Hardware(cuda=True, bf16=False)  # pre-Ampere: fp16 only
NO_GPU = Hardware(cuda=False)
SMOL = "smollm2-135m-instruct"


@pytest.mark.parametrize(
    ("hardware", "device", "dtype"),
    [(AMPERE, "cuda", "bfloat16"), (T4, "cuda", "float16"), (NO_GPU, "cpu", "float32")],
    ids=["bf16-gpu", "fp16-gpu", "cpu"],
)
def test_auto_picks_the_device_and_its_best_dtype(hardware: Hardware, device: str, dtype: str):
    import torch

    plan = plan_device(hardware=hardware)
    assert (plan.device, plan.dtype_name) == (device, dtype)
    assert plan.dtype == getattr(torch, dtype)
    assert plan.bf16 is (dtype == "bfloat16")
    assert plan.is_cuda is hardware.cuda


def test_explicit_choices_win_over_auto() -> None:
    assert plan_device("cpu", hardware=AMPERE) == DevicePlan("cpu", "float32")
    assert plan_device("cuda", "float32", hardware=AMPERE) == DevicePlan("cuda", "float32")
    assert plan_device("cuda:1", hardware=T4) == DevicePlan("cuda:1", "float16")
    assert plan_device("cpu", "bfloat16", hardware=NO_GPU).bf16


@pytest.mark.parametrize("device", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_a_gpu_is_refused_with_cpu_as_the_fix(device: str) -> None:
    with pytest.raises(ValueError, match="no CUDA GPU is available; use 'cpu'") as info:
        plan_device(device, hardware=NO_GPU)
    assert f"'{device}'" in str(info.value)


@pytest.mark.parametrize("device", ["tpu", "mps", "cudax", "cuda:", "cuda:one", "CUDA"])
def test_unknown_devices_are_refused_naming_the_choices(device: str) -> None:
    with pytest.raises(ValueError, match=r"not supported; use auto, cpu, cuda or cuda:N"):
        plan_device(device, hardware=AMPERE)


def test_unknown_dtype_is_refused() -> None:
    with pytest.raises(ValueError, match="dtype 'int8' is not supported"):
        plan_device("cpu", "int8", hardware=NO_GPU)


def test_this_machine_is_detected_consistently() -> None:
    import torch

    hardware = detect_hardware()
    assert hardware.cuda is torch.cuda.is_available()
    assert not hardware.bf16 or hardware.cuda  # bf16 is a GPU capability, never without CUDA
    assert plan_device().is_cuda is hardware.cuda


def test_a_gpu_that_only_emulates_bf16_gets_fp16(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    # Stand-in for what cannot run here: a T4. torch's is_bf16_supported() says True on it by
    # default, because bf16 tensors can be made there (emulated, slowly); natively it has none.
    def t4_is_bf16_supported(including_emulation: bool = True) -> bool:
        return including_emulation

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", t4_is_bf16_supported)
    assert detect_hardware() == T4
    assert plan_device().dtype_name == "float16"


@pytest.mark.parametrize(
    ("hardware", "compute"),
    [(AMPERE, "bfloat16"), (T4, "float16"), (NO_GPU, "float32")],
    ids=["bf16-gpu", "fp16-gpu", "cpu"],
)
def test_4bit_is_nf4_double_quantized_computing_in_the_plan_dtype(
    hardware: Hardware, compute: str
) -> None:
    import torch

    plan = plan_device(hardware=hardware)
    kwargs = load_kwargs(LoadRequest(SMOL, quantization="4bit"), plan)
    quant = kwargs["quantization_config"]
    assert quant.load_in_4bit and not quant.load_in_8bit
    assert quant.bnb_4bit_quant_type == "nf4"
    assert quant.bnb_4bit_use_double_quant
    assert quant.bnb_4bit_compute_dtype == getattr(torch, compute)
    assert kwargs["dtype"] == getattr(torch, compute)


@pytest.mark.parametrize("hardware", [AMPERE, T4, NO_GPU], ids=["bf16-gpu", "fp16-gpu", "cpu"])
def test_8bit_is_bitsandbytes_int8(hardware: Hardware) -> None:
    quant = load_kwargs(LoadRequest(SMOL, quantization="8bit"), plan_device(hardware=hardware))[
        "quantization_config"
    ]
    assert quant.load_in_8bit and not quant.load_in_4bit


@pytest.mark.parametrize(
    ("device", "hardware", "device_map"),
    [
        ("auto", AMPERE, {"": 0}),
        ("cuda", T4, {"": 0}),
        ("cuda:0", AMPERE, {"": 0}),
        ("cuda:2", AMPERE, {"": 2}),  # what `accelerate launch` asks for with LOCAL_RANK=2
    ],
)
def test_a_gpu_plan_puts_the_whole_model_on_its_gpu(
    device: str, hardware: Hardware, device_map: dict[str, int]
) -> None:
    kwargs = load_kwargs(LoadRequest(SMOL, device=device), plan_device(device, hardware=hardware))
    assert kwargs["device_map"] == device_map


def test_cpu_full_precision_has_no_device_map_and_no_quantization() -> None:
    import torch

    kwargs = load_kwargs(LoadRequest(SMOL), plan_device(hardware=NO_GPU))
    assert kwargs == {"trust_remote_code": False, "dtype": torch.float32}


def test_full_precision_on_a_gpu_loads_in_the_plan_dtype_without_quantization() -> None:
    import torch

    kwargs = load_kwargs(LoadRequest(SMOL, trust_remote_code=True), plan_device(hardware=AMPERE))
    assert kwargs == {"trust_remote_code": True, "dtype": torch.bfloat16, "device_map": {"": 0}}
