"""Pick the device and compute dtype: bf16 on a capable GPU, fp16 on older GPUs, fp32 on CPU.

Every device-dependent choice elsewhere (quantization compute dtype, device_map, mixed
precision, optimizer, memory estimate, merge dtype) is a function of the DevicePlan made here.
The hardware is read in one place, `detect_hardware`; passing a `Hardware` value instead lets
the CUDA choices be checked on a machine without a GPU.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

DeviceName = Literal["auto", "cpu", "cuda"]
DtypeName = Literal["auto", "float32", "bfloat16", "float16"]
_CUDA_DEVICE = re.compile(r"cuda(:\d+)?")


@dataclass(frozen=True)
class Hardware:
    """What the plan depends on: is there a CUDA GPU, and does it compute in bf16 natively."""

    cuda: bool
    bf16: bool = False  # Ampere (compute capability 8.0) or newer; never true without CUDA
    gpus: int = 0  # CUDA GPUs this process sees (what a multi-process launch can use)


@dataclass(frozen=True)
class DevicePlan:
    """Where a model runs and in which dtype. `bf16` is what training's mixed precision uses."""

    device: str
    dtype_name: str

    @property
    def dtype(self) -> torch.dtype:
        import torch  # lazy: torch is slow to import; only model work needs it

        return getattr(torch, self.dtype_name)

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def bf16(self) -> bool:
        return self.dtype_name == "bfloat16"

    @property
    def cuda_index(self) -> int | None:
        """The GPU number ('cuda' is GPU 0); None on CPU."""
        if not self.is_cuda:
            return None
        return int(self.device.partition(":")[2] or 0)


def detect_hardware() -> Hardware:
    """This machine's CUDA GPU, if any. Emulated bf16 (pre-Ampere GPUs) does not count: it is
    slow and lacks kernels, so those GPUs get fp16."""
    import torch  # lazy: torch is slow to import; only model work needs it

    if not torch.cuda.is_available():
        return Hardware(cuda=False)
    return Hardware(
        cuda=True,
        bf16=bool(torch.cuda.is_bf16_supported(including_emulation=False)),
        gpus=torch.cuda.device_count(),
    )


def plan_device(
    device: str = "auto", dtype: str = "auto", hardware: Hardware | None = None
) -> DevicePlan:
    """Resolve 'auto' choices against the hardware (this machine's unless given); explicit
    choices are checked."""
    hardware = hardware if hardware is not None else detect_hardware()
    if device == "auto":
        device = "cuda" if hardware.cuda else "cpu"
    if device != "cpu" and not _CUDA_DEVICE.fullmatch(device):
        raise ValueError(f"device '{device}' is not supported; use auto, cpu, cuda or cuda:N.")
    if device.startswith("cuda") and not hardware.cuda:
        raise ValueError(
            f"device '{device}' was requested but no CUDA GPU is available; use 'cpu'."
        )
    if dtype == "auto":
        if device.startswith("cuda"):
            dtype = "bfloat16" if hardware.bf16 else "float16"
        else:
            # Half precision on CPU is slow and lossy for training; fp32 is the safe default.
            dtype = "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(
            f"dtype '{dtype}' is not supported; use auto, float32, bfloat16 or float16."
        )
    return DevicePlan(device=device, dtype_name=dtype)
