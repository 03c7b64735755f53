"""Fixtures for the store tests: a real database per test (an SQLite file, then a PostgreSQL
database) and record and run factories.

Every test that uses `db_url` or `store` runs twice, with ids `sqlite` and `postgresql`. The
PostgreSQL run gets a fresh database on a throwaway server (tests/pg.py); without PostgreSQL or
psycopg it skips with the reason, and under CI=true it fails instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from studio.store import (
    ComparisonConfigSpec,
    ComparisonResult,
    ComparisonRun,
    ExchangeRecord,
    Store,
    TemplateVersion,
)
from studio.store.engine import make_engine
from tests.pg import require_postgres

RecordFactory = Callable[..., ExchangeRecord]


BACKENDS = ("sqlite", "postgresql")


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: an SQLite file in a new directory, or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'data' / 'studio.db'}"
        return
    with require_postgres() as url:
        yield url


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on the test's database, for migration tests that step between revisions."""
    built = make_engine(db_url)
    yield built
    built.dispose()


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


SpecFactory = Callable[..., ComparisonConfigSpec]
ResultFactory = Callable[..., ComparisonResult]
RunFactory = Callable[..., ComparisonRun]


@pytest.fixture
def make_result() -> ResultFactory:
    """Build a valid loglik ComparisonResult; keyword arguments override any field."""

    def build(config_id: int, example_index: int, **overrides: Any) -> ComparisonResult:
        fields: dict[str, Any] = {
            "config_id": config_id,
            "example_index": example_index,
            "prompt_text": f"Review: example {example_index}\nSentiment:",
            "gold": "positive",
            "prediction": "positive",
            "correct": True,
            "correct_norm": True,
            "choice_scores": [
                {"choice": "positive", "logprob": -0.25, "length": 1},
                {"choice": "negative", "logprob": -1.5, "length": 1},
            ],
            "latency_ms": 12.5,
            "prompt_tokens": 9,
        }
        fields.update(overrides)
        return ComparisonResult(**fields)

    return build


@pytest.fixture
def make_run(store: Store) -> RunFactory:
    """Create a loglik run over a registered dataset with one config per template version.

    With no `versions`, saves two versions of template "sst2-sentiment" and uses v1, v2, v2.
    """

    def create(versions: list[TemplateVersion] | None = None, **overrides: Any) -> ComparisonRun:
        if versions is None:
            v1 = store.save_template_version("sst2-sentiment", "template: v1", "hash-v1")
            v2 = store.save_template_version("sst2-sentiment", "template: v2", "hash-v2")
            versions = [v1, v2, v2]
        dataset = store.register_dataset("sst2", "/data/sst2.csv", "csv", "d" * 64, 100, ["x"])
        fields: dict[str, Any] = {
            "name": "sentiment sweep",
            "scoring": "loglik",
            "config": {"models": ["smollm2"], "shots": [0, 5], "seeds": [1]},
            "dataset_id": dataset.id,
            "shot_pool_id": None,
            "n_examples": 20,
            "configs": [_config_spec(v, shots=5 * i) for i, v in enumerate(versions)],
            "host": "lab-1",
            "pid": 4242,
        }
        fields.update(overrides)
        return store.create_comparison_run(**fields)

    return create


def _config_spec(version: TemplateVersion, **overrides: Any) -> ComparisonConfigSpec:
    fields: dict[str, Any] = {
        "model_spec": "smollm2-135m-instruct",
        "template_version_id": version.id,
        "shots": 0,
        "seed": 1,
        "selection": "first",
    }
    fields.update(overrides)
    fields.setdefault(
        "label",
        f"smollm2 · {version.template_name}@v{version.version} · {fields['shots']}-shot · "
        f"seed {fields['seed']}",
    )
    return ComparisonConfigSpec(**fields)


@pytest.fixture
def make_spec() -> SpecFactory:
    """Build a ComparisonConfigSpec for a template version; keyword arguments override."""
    return _config_spec
