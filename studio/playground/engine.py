"""The Playground engine: one chat exchange, streamed, stoppable and logged to the store."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from studio.inference.backends import InferenceBackend, LocalBackend
from studio.inference.generation import GenerationResult
from studio.inference.params import SamplingParams
from studio.inference.registry import ModelBackends
from studio.playground.prompting import choose_mode, conversation_prompt
from studio.store import ExchangeRecord, Store

Message = dict[str, str]


@dataclass(frozen=True)
class ChatRequest:
    """One user turn: the conversation so far, the new message, the model and how to decode."""

    model: str
    user_message: str
    params: SamplingParams = field(default_factory=lambda: SamplingParams())
    quantization: str = "none"
    mode: str = "auto"
    system_prompt: str = ""
    history: tuple[Message, ...] = ()
    conversation_id: str | None = None

    def __post_init__(self) -> None:
        if not self.user_message.strip():
            raise ValueError("The message is empty. Type something to send.")
        for turn in self.history:
            if turn.get("role") not in ("user", "assistant") or "content" not in turn:
                raise ValueError("history items must be {'role': 'user'|'assistant', 'content'}.")


@dataclass(frozen=True)
class Status:
    """Something is happening before tokens flow (loading, converting)."""

    message: str


@dataclass(frozen=True)
class Delta:
    """The response so far."""

    text: str


@dataclass(frozen=True)
class Finished:
    """The exchange is done and stored."""

    exchange_id: int
    record: ExchangeRecord
    result: GenerationResult


Event = Status | Delta | Finished


class Playground:
    """Runs chat exchanges against any model spec and records every one of them."""

    def __init__(self, store: Store, backends: ModelBackends) -> None:
        self.store = store
        self.backends = backends

    def stream(self, request: ChatRequest, stop: threading.Event | None = None) -> Iterator[Event]:
        stop = stop or threading.Event()
        backend: InferenceBackend | None = None
        for item in self._open(request.model, request.quantization):
            if isinstance(item, Status):
                yield item
            else:
                backend = item
        assert backend is not None
        if backend.kind == "served":
            yield Status(f"Asking {backend.location}…")
        mode = choose_mode(request.mode, backend.prompt_format)
        history = [dict(turn) for turn in request.history]
        prompt = conversation_prompt(
            backend.prompt_format,
            mode,
            request.system_prompt or None,
            history,
            request.user_message,
        )
        text = ""
        result: GenerationResult | None = None
        for piece in backend.stream(prompt, mode, request.params, stop):
            if isinstance(piece, GenerationResult):
                result = piece
            else:
                text += piece
                yield Delta(text)
        assert result is not None
        record = self._record(request, backend, mode, prompt, history, result)
        exchange_id = self.store.log_exchange(record)
        yield Finished(exchange_id, record, result)

    def _open(self, spec: str, quantization: str) -> Iterator[Status | InferenceBackend]:
        """Open the backend; a model still to load loads in a worker thread, so its progress
        messages reach the caller while it works."""
        if self.backends.is_ready(spec, quantization):
            yield self.backends.open(spec, quantization)
            return
        messages: queue.Queue[str] = queue.Queue()
        outcome: dict[str, Any] = {}

        def work() -> None:
            try:
                outcome["backend"] = self.backends.open(spec, quantization, messages.put)
            except BaseException as exc:
                outcome["error"] = exc

        started = time.perf_counter()
        worker = threading.Thread(target=work, name="studio-load", daemon=True)
        worker.start()
        last = f"Loading {spec}…"
        yield Status(last)
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                last = messages.get(timeout=1.0)
            yield Status(f"{last} ({time.perf_counter() - started:.0f} s)")
        worker.join()
        if "error" in outcome:
            raise outcome["error"]
        yield outcome["backend"]

    def _record(
        self,
        request: ChatRequest,
        backend: InferenceBackend,
        mode: str,
        prompt: str,
        history: list[Message],
        result: GenerationResult,
    ) -> ExchangeRecord:
        params = request.params.model_dump(mode="json")
        params["seed"] = result.seed  # the seed actually used, so a sampled answer can be replayed
        served = backend.kind == "served"
        if served:  # not part of the OpenAI API, so not sent: record only what was
            params = {k: v for k, v in params.items() if k not in SERVED_UNSENT}
        return ExchangeRecord(
            conversation_id=request.conversation_id or str(uuid.uuid4()),
            turn=len(history) // 2,
            model_spec=backend.spec,
            model_source=_source_kind(backend),
            model_resolved_path=backend.location,
            quantization="none" if served else request.quantization,
            mode=mode,
            system_prompt=request.system_prompt or None,
            history=history,
            user_message=request.user_message,
            prompt_text=prompt,
            parameters=params,
            response=result.text,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=result.completion_tokens,
            latency_ms=result.latency_s * 1000.0,
            first_token_ms=None if result.first_token_s is None else result.first_token_s * 1000,
            finish_reason=result.finish_reason,
            error=None,
        )


SERVED_UNSENT = ("top_k", "repetition_penalty")


def _source_kind(backend: InferenceBackend) -> str:
    if isinstance(backend, LocalBackend):
        return backend.loaded.source.kind
    return backend.kind


def conversation_messages(records: list[ExchangeRecord]) -> list[Message]:
    """Rebuild the chat transcript (user/assistant turns) from stored exchanges."""
    messages: list[Message] = []
    for record in records:
        messages.append({"role": "user", "content": record.user_message})
        messages.append({"role": "assistant", "content": record.response})
    return messages
