"""Fixtures for the store tests: a real SQLite file per test and a record factory."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.store import ExchangeRecord, Store

RecordFactory = Callable[..., ExchangeRecord]


@pytest.fixture
def db_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'studio.db'}"


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    opened = Store(db_url)
    yield opened
    opened.close()


@pytest.fixture
def make_record() -> RecordFactory:
    """Build a valid ExchangeRecord; keyword arguments override any field."""

    def build(**overrides: Any) -> ExchangeRecord:
        fields: dict[str, Any] = {
            "conversation_id": "00000000-0000-4000-8000-000000000001",
            "turn": 0,
            "model_spec": "smollm2-135m-instruct",
            "model_source": "bundled",
            "quantization": "none",
            "mode": "chat",
            "user_message": "What is the capital of France?",
            "prompt_text": "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n",
            "response": "Paris.",
            "prompt_tokens": 12,
            "completion_tokens": 3,
            "latency_ms": 42.5,
            "finish_reason": "eos",
        }
        fields.update(overrides)
        return ExchangeRecord(**fields)

    return build
