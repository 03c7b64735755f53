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

from studio.runtime import compute

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


def encode(
    tokenizer: Any, prompt: str, prompt_ids: list[int], continuation: str, add_special_tokens: bool
) -> list[int]:
    """Continuation token ids as they appear after the prompt (tokenized together when possible)."""
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
        ids = list(tokenizer(prompt, add_special_tokens=add_special_tokens)["input_ids"])
        conts = [encode(tokenizer, prompt, ids, c, add_special_tokens) for c in options]
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
    """Groups of examples with the same number of choices, at most batch_rows sequences each."""
    batch: list[_Encoded] = []
    for example in examples:
        n = len(example.continuations)
        if batch and (len(batch) + 1 > max(1, batch_rows // n) or n != len(batch[0].continuations)):
            yield batch
            batch = []
        batch.append(example)
    if batch:
        yield batch


def _prefix_state(model: Any, prefix_ids: list[int]) -> Any | None:
    """Run the shared prefix once and keep its KV cache."""
    import torch  # lazy: torch is slow to import; only model work needs it

    if not prefix_ids:
        return None
    with torch.inference_mode():
        ids = torch.tensor([prefix_ids], device=model.device)
        out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
        return getattr(out, "cache", None) or out.past_key_values


def _score_batch(
    model: Any,
    prefix: Any | None,
    prefix_len: int,
    batch: list[_Encoded],
    tokenizer: Any,
) -> list[list[float]]:
    """Score a batch in at most two forward passes.

    Pass 1 runs each example's own prompt tokens once (left-padded, after the shared prefix) and
    reads the distribution of the next token: that scores every choice's first token. Pass 2 runs
    only when some choice has more tokens: its cache is the pass-1 cache repeated per choice, and
    it feeds the choices' remaining tokens. The prompt is never recomputed per choice.
    """
    import torch  # lazy: torch is slow to import; only model work needs it

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    queries = [e.prompt_ids[prefix_len:] for e in batch]
    ids, mask = left_padded(queries, pad, model.device)
    cache = None
    if prefix is not None:
        cache = copy.deepcopy(prefix)
        cache.batch_repeat_interleave(len(batch))
    full_mask = _with_prefix(mask, prefix_len)
    positions = (prefix_len + mask.cumsum(-1) - 1).clamp(min=prefix_len)
    with torch.inference_mode():
        out = model(
            input_ids=ids,
            attention_mask=full_mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=1,
        )
        first = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
    scores = [[float(first[i, c[0]]) for c in e.continuations] for i, e in enumerate(batch)]
    if any(len(c) > 1 for e in batch for c in e.continuations):
        cache = getattr(out, "cache", None) or out.past_key_values
        _add_continuation_tails(model, cache, full_mask, batch, queries, prefix_len, pad, scores)
    return scores


def left_padded(seqs: list[list[int]], pad: int, device: Any) -> tuple[Any, Any]:
    import torch  # lazy: torch is slow to import; only model work needs it

    width = max(len(s) for s in seqs)
    ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
    mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=device)
    return ids, mask


def _with_prefix(mask: Any, prefix_len: int) -> Any:
    import torch  # lazy: torch is slow to import; only model work needs it

    if prefix_len == 0:
        return mask
    ones = torch.ones((mask.shape[0], prefix_len), dtype=mask.dtype, device=mask.device)
    return torch.cat([ones, mask], dim=-1)


def _add_continuation_tails(
    model: Any,
    cache: Any,
    mask: Any,
    batch: list[_Encoded],
    queries: list[list[int]],
    prefix_len: int,
    pad: int,
    scores: list[list[float]],
) -> None:
    """Pass 2: tokens 2..n of every choice, right-padded, each row on its example's cache."""
    import torch  # lazy: torch is slow to import; only model work needs it

    n_choices = len(batch[0].continuations)
    tails = [c[:-1] for e in batch for c in e.continuations]  # inputs predicting tokens 2..n
    width = max(len(t) for t in tails)
    ids = torch.tensor([t + [pad] * (width - len(t)) for t in tails], device=mask.device)
    tail_mask = torch.tensor(
        [[1] * len(t) + [0] * (width - len(t)) for t in tails], device=mask.device
    )
    cache.batch_repeat_interleave(n_choices)
    rows_mask = torch.cat([mask.repeat_interleave(n_choices, dim=0), tail_mask], dim=-1)
    starts = torch.tensor(
        [prefix_len + len(q) for q in queries], device=mask.device
    ).repeat_interleave(n_choices)
    positions = starts[:, None] + torch.arange(width, device=mask.device)[None, :]
    with torch.inference_mode():
        logits = model(
            input_ids=ids,
            attention_mask=rows_mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
        ).logits.float()
    for i, example in enumerate(batch):
        for j, cont in enumerate(example.continuations):
            if len(cont) < 2:
                continue
            row = i * n_choices + j
            window = torch.log_softmax(logits[row, : len(cont) - 1], dim=-1)
            target = torch.tensor(cont[1:], device=window.device)
            scores[i][j] += float(window.gather(1, target[:, None]).sum())
