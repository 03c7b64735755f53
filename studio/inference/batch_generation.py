"""Batched generation for comparison grids: length-sorted, left-padded, seeded, stoppable."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from studio.inference.generation import cut_at_stop, generate_kwargs
from studio.inference.params import SamplingParams
from studio.inference.scoring import left_padded
from studio.runtime import compute


@dataclass(frozen=True)
class Generated:
    index: int
    text: str  # cut at the first stop string
    prompt_tokens: int | None  # None: a served model did not report it
    completion_tokens: int | None
    latency_s: float  # this example's share of its batch's wall time


def generate_batch(
    loaded: Any,
    prompts: Sequence[str],
    params: SamplingParams,
    *,
    batch_size: int = 8,
    add_special_tokens: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[Generated]:
    """Generate for every prompt; yields as each batch finishes. Seeded per batch position."""
    tokenizer = loaded.tokenizer
    encoded = [
        (i, list(tokenizer(p, add_special_tokens=add_special_tokens)["input_ids"]))
        for i, p in enumerate(prompts)
    ]
    encoded.sort(key=lambda item: -len(item[1]))
    for start in range(0, len(encoded), batch_size):
        if stop is not None and stop.is_set():
            return
        batch = encoded[start : start + batch_size]
        seed = (params.seed or 0) + start  # a fixed seed gives the same samples on every run
        began = time.perf_counter()
        outputs = compute.run(_generate, loaded, [ids for _, ids in batch], params, seed)
        share = (time.perf_counter() - began) / len(batch)
        for (index, ids), new_ids in zip(batch, outputs, strict=True):
            yield Generated(
                index=index,
                text=cut_at_stop(tokenizer.decode(new_ids, skip_special_tokens=True), params.stop),
                prompt_tokens=len(ids),
                completion_tokens=len(new_ids),
                latency_s=share,
            )


def _generate(
    loaded: Any, batch: list[list[int]], params: SamplingParams, seed: int
) -> list[list[int]]:
    import torch  # lazy: torch is slow to import; only model work needs it

    tokenizer, model = loaded.tokenizer, loaded.model
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    width = max(len(ids) for ids in batch)
    ids, mask = left_padded(batch, pad, model.device)
    kwargs = generate_kwargs(params, tokenizer)
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=mask, **kwargs)
    eos = tokenizer.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    results = []
    for row in out[:, width:].tolist():
        # Trailing padding/EOS after a row finished early is not part of its answer.
        while row and (row[-1] == pad or row[-1] in eos_ids):
            row.pop()
        results.append(row)
    return results
