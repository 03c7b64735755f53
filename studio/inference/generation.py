"""Streamed generation: tokens arrive as decoded; a stop event ends it at the next token."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from studio.inference.params import SamplingParams
from studio.models.loading import LoadedModel
from studio.runtime import compute


@dataclass(frozen=True)
class GenerationResult:
    """The finished output and what it took."""

    text: str
    prompt_tokens: int | None  # None: a served model did not report it
    completion_tokens: int | None
    finish_reason: str  # eos | length | stop_string | stopped
    seed: int
    first_token_s: float | None
    latency_s: float


def _stop_on_event(stop_event: threading.Event) -> Any:
    # lazy: transformers is slow to import; only model work needs it
    from transformers import StoppingCriteria

    class _StopOnEvent(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return stop_event.is_set()

    return _StopOnEvent()


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """The text before the earliest stop string (unchanged when none occurs)."""
    cut = min((text.find(s) for s in stops if s in text), default=-1)
    return text[:cut] if cut >= 0 else text


def generate_kwargs(params: SamplingParams, tokenizer: Any) -> dict[str, Any]:
    """`model.generate` arguments for these sampling parameters (shared by every generator)."""
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    kwargs: dict[str, Any] = {
        "max_new_tokens": params.max_new_tokens,
        "repetition_penalty": params.repetition_penalty,
        "pad_token_id": pad,
    }
    if params.greedy:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    else:
        kwargs.update(
            do_sample=True, temperature=params.temperature, top_p=params.top_p, top_k=params.top_k
        )
    if params.stop:
        # transformers stops on these strings even when they span several tokens.
        kwargs.update(stop_strings=list(params.stop), tokenizer=tokenizer)
    return kwargs


def stream_generate(
    loaded: LoadedModel,
    prompt_text: str,
    params: SamplingParams,
    stop_event: threading.Event | None = None,
    add_special_tokens: bool = False,
) -> Iterator[str | GenerationResult]:
    """Yield text pieces as they are generated, then one GenerationResult."""
    import torch  # lazy: torch is slow to import; only model work needs it

    # lazy: transformers is slow to import; only model work needs it
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    stop_event = stop_event or threading.Event()
    tokenizer, model = loaded.tokenizer, loaded.model
    inputs = tokenizer(prompt_text, return_tensors="pt", add_special_tokens=add_special_tokens)
    inputs = {k: v.to(model.device) for k, v in inputs.items()}
    prompt_len = int(inputs["input_ids"].shape[1])
    seed = params.seed if params.seed is not None else random.randrange(2**32)
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    kwargs = generate_kwargs(params, tokenizer)
    kwargs["stopping_criteria"] = StoppingCriteriaList([_stop_on_event(stop_event)])
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            with torch.inference_mode():
                torch.manual_seed(seed)
                outcome["ids"] = model.generate(**inputs, streamer=streamer, **kwargs)
        except BaseException as exc:  # surfaced in the caller's thread below
            outcome["error"] = exc
            streamer.end()

    started = time.perf_counter()
    if compute.on_compute_thread():
        raise RuntimeError("stream_generate must be consumed outside the compute thread")
    done = compute.submit(run)
    pieces: list[str] = []
    first_token_s = yield from _relay(streamer, stop_event, started, pieces)
    done.result()
    if "error" in outcome:
        raise outcome["error"]
    generated = outcome["ids"][0][prompt_len:]
    yield _finish(
        tokenizer,
        generated,
        "".join(pieces),
        params,
        stop_event,
        seed,
        prompt_len,
        started,
        first_token_s,
    )


def _finish(
    tokenizer: Any,
    generated: Any,
    text: str,
    params: SamplingParams,
    stop_event: threading.Event,
    seed: int,
    prompt_len: int,
    started: float,
    first_token_s: float | None,
) -> GenerationResult:
    count = int(generated.shape[0])
    reason = "length"
    eos_ids = tokenizer.eos_token_id
    eos_ids = set(eos_ids if isinstance(eos_ids, list) else [eos_ids])
    if stop_event.is_set():
        reason = "stopped"
    elif count and int(generated[-1]) in eos_ids:
        reason = "eos"
    trimmed = cut_at_stop(text, params.stop)
    if trimmed != text:
        text, reason = trimmed, "stop_string"
    return GenerationResult(
        text=text,
        prompt_tokens=prompt_len,
        completion_tokens=count,
        finish_reason=reason,
        seed=seed,
        first_token_s=first_token_s,
        latency_s=time.perf_counter() - started,
    )


def _relay(
    streamer: Any, stop_event: threading.Event, started: float, pieces: list[str]
) -> Generator[str, None, float | None]:
    """Pass the streamer's pieces on as they come (kept in `pieces`); returns the time to the
    first one. A consumer that goes away (closed browser, cancelled request) stops generation,
    freeing the compute thread."""
    first_token_s: float | None = None
    streamed_to_end = False
    try:
        for piece in streamer:
            if not piece:
                continue
            if first_token_s is None:
                first_token_s = time.perf_counter() - started
            pieces.append(piece)
            yield piece
        streamed_to_end = True
    finally:
        if not streamed_to_end:
            stop_event.set()
    return first_token_s
