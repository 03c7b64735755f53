"""Log-likelihood scoring of answer choices, batched, with the shared prompt prefix computed once.

For every example and choice the score is the summed log-probability of the choice's tokens as a
continuation of the prompt. Examples are sorted by length and scored several at a time with all of
their choices in one forward pass. When the prompts share a prefix (the system prompt and the same
few-shot block), that prefix runs through the model once; its KV cache is copied for each batch,
so each forward pass only covers the part that differs.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from studio.inference import compute

MIN_SHARED_PREFIX = 8  # below this many tokens a shared cache saves less than copying it costs


@dataclass(frozen=True)
class ChoiceScore:
    choice: str
    logprob: float
    n_tokens: int
    length: int  # bytes of the continuation text: acc_norm divides by this


@dataclass(frozen=True)
class ScoredExample:
    index: int
    scores: list[ChoiceScore]
    prompt_tokens: int
    latency_s: float  # this example's share of its batch's wall time


@dataclass
class _Encoded:
    index: int
    prompt_ids: list[int]
    continuations: list[list[int]]


def encode(tokenizer: Any, prompt: str, continuation: str, add_special_tokens: bool) -> list[int]:
    """Continuation token ids as they appear after the prompt (tokenized together when possible)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
    whole = tokenizer(prompt + continuation, add_special_tokens=add_special_tokens)["input_ids"]
    if whole[: len(prompt_ids)] == prompt_ids and len(whole) > len(prompt_ids):
        return list(whole[len(prompt_ids) :])
    return list(tokenizer(continuation, add_special_tokens=False)["input_ids"])


def shared_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix, leaving at least one own token in every sequence."""
    if not sequences:
        return 0
    first, n = sequences[0], min(len(s) for s in sequences) - 1
    for i in range(max(n, 0)):
        if any(s[i] != first[i] for s in sequences):
            return i
    return max(n, 0)


def score_choices(
    loaded: Any,
    prompts: Sequence[str],
    choices: Sequence[Sequence[str]],
    *,
    batch_rows: int = 16,
    reuse_prefix: bool = True,
    add_special_tokens: bool = False,
    stop: threading.Event | None = None,
) -> Iterator[ScoredExample]:
    """Score every example's choices; yields examples as batches finish (not in input order)."""
    tokenizer = loaded.tokenizer
    encoded = []
    for i, (prompt, options) in enumerate(zip(prompts, choices, strict=True)):
        ids = tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"]
        conts = [encode(tokenizer, prompt, c, add_special_tokens) for c in options]
        encoded.append(_Encoded(i, list(ids), conts))
    prefix_len = shared_prefix_length([e.prompt_ids for e in encoded]) if reuse_prefix else 0
    if prefix_len < MIN_SHARED_PREFIX:
        prefix_len = 0
    prefix = compute.run(_prefix_state, loaded.model, encoded[0].prompt_ids[:prefix_len])
    for batch in _batches(sorted(encoded, key=lambda e: -len(e.prompt_ids)), batch_rows):
        if stop is not None and stop.is_set():
            return
        started = time.perf_counter()
        logprobs = compute.run(_score_batch, loaded.model, prefix, prefix_len, batch, tokenizer)
        share = (time.perf_counter() - started) / len(batch)
        for example, values in zip(batch, logprobs, strict=True):
            options = choices[example.index]
            yield ScoredExample(
                index=example.index,
                scores=[
                    ChoiceScore(text, lp, len(ids), len(text.encode()))
                    for text, lp, ids in zip(options, values, example.continuations, strict=True)
                ],
                prompt_tokens=len(example.prompt_ids),
                latency_s=share,
            )


def _batches(examples: list[_Encoded], batch_rows: int) -> Iterator[list[_Encoded]]:
    batch: list[_Encoded] = []
    rows = 0
    for example in examples:
        n = len(example.continuations)
        if batch and rows + n > batch_rows:
            yield batch
            batch, rows = [], 0
        batch.append(example)
        rows += n
    if batch:
        yield batch


def _prefix_state(model: Any, prefix_ids: list[int]) -> tuple[Any, Any] | None:
    """Run the shared prefix once: its KV cache and the log-probs of the token after it."""
    import torch

    if not prefix_ids:
        return None
    with torch.inference_mode():
        ids = torch.tensor([prefix_ids], device=model.device)
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        cache = getattr(out, "cache", None) or out.past_key_values
        return cache, torch.log_softmax(out.logits[0, -1].float(), dim=-1)


def _score_batch(
    model: Any,
    prefix: tuple[Any, Any] | None,
    prefix_len: int,
    batch: list[_Encoded],
    tokenizer: Any,
) -> list[list[float]]:
    """One forward pass over every (example, choice) row of the batch, left-padded."""
    import torch

    rows = [(e, c) for e in batch for c in e.continuations]
    seqs = [e.prompt_ids[prefix_len:] + c for e, c in rows]
    width = max(len(s) for s in seqs)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=model.device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=model.device)
    # Positions continue after the prefix and skip the left padding.
    positions = (prefix_len + mask.cumsum(-1) - 1).clamp(min=prefix_len)
    keep = max(len(c) for _, c in rows) + 1
    kwargs: dict[str, Any] = {"position_ids": positions, "logits_to_keep": keep}
    if prefix is not None:
        cache = copy.deepcopy(prefix[0])
        cache.batch_repeat_interleave(len(seqs))
        kwargs["cache"] = cache
        ones = torch.ones((len(seqs), prefix_len), dtype=mask.dtype, device=model.device)
        mask = torch.cat([ones, mask], dim=-1)
    with torch.inference_mode():
        logits = model(input_ids=ids, attention_mask=mask, use_cache=prefix is not None, **kwargs)
        logits = logits.logits.float()
    scores: list[list[float]] = [[] for _ in batch]
    owner = {id(e): i for i, e in enumerate(batch)}
    for r, (example, cont) in enumerate(rows):
        scores[owner[id(example)]].append(_continuation_logprob(logits[r], cont, keep))
    return scores


def _continuation_logprob(logits: Any, cont: list[int], keep: int) -> float:
    """Sum of log p(cont) from the kept logits: position t of the row is predicted by t - 1."""
    import torch

    # The kept logits cover the last `keep` positions; the continuation is the last len(cont).
    start = keep - len(cont) - 1
    window = torch.log_softmax(logits[start : start + len(cont)], dim=-1)
    target = torch.tensor(cont, device=window.device)
    return float(window.gather(1, target[:, None]).sum())
