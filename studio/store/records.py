"""Values that cross the store's boundary.

Owns the frozen dataclasses callers pass in and get back (they never see ORM rows) and the
vocabularies of the short string fields, checked before anything is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MODEL_SOURCES = ("bundled", "hub", "local", "gguf", "adapter")
QUANTIZATIONS = ("none", "8bit", "4bit")
MODES = ("chat", "completion")
FINISH_REASONS = ("eos", "length", "stop_string", "stopped", "error")
PREVIEW_CHARS = 80


@dataclass(frozen=True, kw_only=True)
class ExchangeRecord:
    """One playground exchange, as logged and as read back.

    ``history`` holds the ``{"role", "content"}`` messages before this turn, ``prompt_text`` the
    exact string sent to the model after the chat template, and ``parameters`` the generation
    settings (temperature, top_p, top_k, max_new_tokens, repetition_penalty, stop, seed, ...).
    ``model_source`` and ``model_resolved_path`` describe the model row the exchange is filed
    under; read back, they are that row's current values. ``id`` is set by the store, and
    ``created_at`` defaults to the time of logging.
    """

    conversation_id: str
    turn: int
    model_spec: str
    model_source: str
    quantization: str
    mode: str
    user_message: str
    prompt_text: str
    response: str
    prompt_tokens: int
    completion_tokens: int
    latency_ms: float
    finish_reason: str
    system_prompt: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    first_token_ms: float | None = None
    error: str | None = None
    model_resolved_path: str | None = None
    id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ExchangeSummary:
    """One row of the history list; ``preview`` is the first 80 characters of the message."""

    id: int
    conversation_id: str
    turn: int
    created_at: datetime
    model_spec: str
    quantization: str
    preview: str
    completion_tokens: int
    latency_ms: float
    finish_reason: str


@dataclass(frozen=True)
class ModelUse:
    """A model the user has loaded and how many exchanges were logged with it."""

    spec: str
    source: str
    resolved_path: str | None
    first_used_at: datetime
    last_used_at: datetime
    exchanges: int


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def check_exchange(record: ExchangeRecord) -> None:
    """Reject vocabulary mistakes before anything is written; the database enforces the rest."""
    check_choice("model_source", record.model_source, MODEL_SOURCES)
    check_choice("quantization", record.quantization, QUANTIZATIONS)
    check_choice("mode", record.mode, MODES)
    check_choice("finish_reason", record.finish_reason, FINISH_REASONS)
    if record.created_at is not None and record.created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware (UTC); got a naive datetime")
