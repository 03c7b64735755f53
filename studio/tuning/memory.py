"""Estimate how much memory a tuning run needs, next to what the device has.

The model is built on the meta device (no weights are read), so parameter counts are exact for
any architecture transformers knows. The parts:

- base weights: NF4 is 4 bits a weight plus ~0.5 bit of double-quantized scales, 8-bit one byte;
  embeddings and norms stay in the compute dtype;
- the adapter: LoRA weights, their gradients and AdamW's two moments in fp32 (16 bytes a
  parameter; the paged 8-bit optimizer on GPU keeps its moments in 2 bytes);
- activations: per layer about 34 bytes per token per hidden unit in 16-bit (Korthikanti et
  al. 2022; SDPA keeps the attention scores out of memory), only one layer's worth plus the
  layer inputs with gradient checkpointing; and the fp32 logits over the vocabulary, which
  dominate for small models (the logits, their log-softmax and its gradient: three copies) —
  for at most one chunk of loss positions, since studio.tuning.loss projects only the trained
  positions, a chunk at a time;
- a fixed runtime overhead (CUDA context, or the Python/torch/TRL process on CPU).

It is an estimate for a go / no-go decision, not a promise; benchmarks/tune_throughput.py
records measured peaks next to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psutil

from studio.models.device import DevicePlan, plan_device
from studio.tuning.config import TuneConfig
from studio.tuning.loss import CHUNK

GIB = 1024**3
CUDA_OVERHEAD = int(0.6 * GIB)
# Measured (benchmarks/tune_throughput.py): a CPU training process holds ~0.9 GiB of its own
# before the first step (libraries, tokenizer, data) plus ~0.35 GiB of shared library pages.
CPU_OVERHEAD = int(1.25 * GIB)
# Bytes of saved activations per token per hidden unit per layer in 16-bit (Korthikanti et al.).
ACTIVATION_BYTES_PER_HIDDEN = 34


@dataclass(frozen=True)
class ModelShape:
    """What the estimate needs to know about an architecture."""

    n_params: int
    linear_params: int  # in nn.Linear layers other than the output head (what gets quantized)
    lora_params_per_rank: int  # sum of in + out features over the LoRA target layers
    hidden: int
    layers: int
    heads: int
    vocab: int


@dataclass(frozen=True)
class MemoryEstimate:
    parts: dict[str, int]
    available: int | None
    device: str

    @property
    def total(self) -> int:
        return sum(self.parts.values())

    @property
    def fits(self) -> bool | None:
        return None if self.available is None else self.total <= self.available

    def describe(self) -> str:
        parts = ", ".join(f"{name} {_gib(size)}" for name, size in self.parts.items())
        have = "unknown" if self.available is None else _gib(self.available)
        verdict = {True: "fits", False: "does NOT fit", None: "?"}[self.fits]
        return (
            f"memory estimate: {_gib(self.total)} ({parts}); {self.device} has {have} "
            f"available — {verdict}"
        )


def _gib(size: int) -> str:
    return f"{size / GIB:.2f} GiB"


def model_shape(location: Any, target_modules: Any, trust_remote_code: bool = False) -> ModelShape:
    from accelerate import init_empty_weights  # lazy: accelerate pulls in torch
    from torch import nn  # lazy: torch is slow to import; only model work needs it

    # lazy: transformers is slow to import; only model work needs it
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(location, trust_remote_code=trust_remote_code)
    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    head = model.get_output_embeddings()
    linears = [
        (name, m) for name, m in model.named_modules() if isinstance(m, nn.Linear) and m is not head
    ]
    targets = [
        m
        for name, m in linears
        if target_modules == "all-linear" or name.rsplit(".", 1)[-1] in target_modules
    ]
    text = config.get_text_config()
    return ModelShape(
        n_params=sum(p.numel() for p in model.parameters()),
        linear_params=sum(m.weight.numel() for _n, m in linears),
        lora_params_per_rank=sum(m.in_features + m.out_features for m in targets),
        hidden=int(text.hidden_size),
        layers=int(text.num_hidden_layers),
        heads=int(text.num_attention_heads),
        vocab=int(text.vocab_size),
    )


def estimate_from_shape(
    shape: ModelShape, config: TuneConfig, cuda: bool, compute_bytes: int, seq_len: int
) -> dict[str, int]:
    quant = config.model.quantization
    other = shape.n_params - shape.linear_params
    weight_bytes = {"4bit": 0.5 + 0.0625, "8bit": 1.0, "none": float(compute_bytes)}[quant]
    base = int(shape.linear_params * weight_bytes + other * compute_bytes)
    lora = shape.lora_params_per_rank * config.lora.r
    per_lora = 10 if cuda else 16  # weights + grads fp32, moments fp32 (8-bit paged on GPU)
    tokens = config.training.batch_size * seq_len
    # SDPA attention (the default) never materialises the seq x seq scores, so only the
    # per-token term of the formula applies.
    per_layer = tokens * shape.hidden * ACTIVATION_BYTES_PER_HIDDEN * compute_bytes // 2
    if config.training.gradient_checkpointing:
        activations = tokens * shape.hidden * compute_bytes * shape.layers + per_layer
    else:
        activations = per_layer * shape.layers
    # fp32 logits, log-softmax and their gradient, for one chunk of loss positions at most
    logits = min(tokens, CHUNK) * shape.vocab * 4 * 3
    return {
        "base weights": base,
        "adapter + optimizer": lora * per_lora,
        "activations": int(activations),
        "logits": logits,
        "runtime": CUDA_OVERHEAD if cuda else CPU_OVERHEAD,
    }


def available_memory(cuda: bool) -> int | None:
    if cuda:
        import torch  # lazy: torch is slow to import; only model work needs it

        free, _total = torch.cuda.mem_get_info()
        return int(free)

    return int(psutil.virtual_memory().available)


def estimate_memory(
    config: TuneConfig, location: Any, longest_example: int | None = None
) -> MemoryEstimate:
    """The estimate for `config` on this machine's default device; `location` is the model
    folder (or cached hub id) holding config.json. Batches are padded to their longest row, so
    the longest example (when known) bounds the sequence length better than max_length."""

    plan = plan_device()
    shape = model_shape(location, config.lora.target_modules, config.model.trust_remote_code)
    seq_len = min(config.data.max_length, longest_example or config.data.max_length)
    if config.training.packing:
        seq_len = config.data.max_length
    return estimate_on(plan, shape, config, seq_len, available_memory(plan.is_cuda))


def estimate_on(
    plan: DevicePlan, shape: ModelShape, config: TuneConfig, seq_len: int, available: int | None
) -> MemoryEstimate:
    """The estimate on a device plan with `available` bytes free (reads no hardware)."""
    compute_bytes = 4 if plan.dtype_name == "float32" else 2
    parts = estimate_from_shape(shape, config, plan.is_cuda, compute_bytes, seq_len)
    return MemoryEstimate(parts, available, plan.device)
