"""Pick the device and compute dtype: bf16 on a capable GPU, fp16 on older GPUs, fp32 on CPU."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import torch

DeviceName = Literal["auto", "cpu", "cuda"]
DtypeName = Literal["auto", "float32", "bfloat16", "float16"]


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


def plan_device(device: str = "auto", dtype: str = "auto") -> DevicePlan:
    """Resolve 'auto' choices against the hardware present; explicit choices are checked."""
    import torch  # lazy: torch is slow to import; only model work needs it

    cuda = torch.cuda.is_available()
    if device == "auto":
        device = "cuda" if cuda else "cpu"
    if device.startswith("cuda") and not cuda:
        raise ValueError("device 'cuda' was requested but no CUDA GPU is available; use 'cpu'.")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise ValueError(f"device '{device}' is not supported; use auto, cpu or cuda.")
    if dtype == "auto":
        if device.startswith("cuda"):
            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
        else:
            # Half precision on CPU is slow and lossy for training; fp32 is the safe default.
            dtype = "float32"
    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(
            f"dtype '{dtype}' is not supported; use auto, float32, bfloat16 or float16."
        )
    return DevicePlan(device=device, dtype_name=dtype)
