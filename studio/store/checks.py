"""Checks run on template, dataset, comparison and tag values before anything is written.

Owns rejecting, with ValueError, vocabulary mistakes, malformed tags, lengths that PostgreSQL
would enforce but SQLite would not, and numbers that JSON columns and SQLite cannot hold
faithfully (NaN, infinities), so the store behaves the same on both.
"""

from __future__ import annotations

import json
import math
from typing import Any

from studio.store.records import (
    SCORINGS,
    SELECTIONS,
    ComparisonConfigSpec,
    ComparisonResult,
    check_choice,
)
from studio.store.schema import (
    HASH_LENGTH,
    LABEL_LENGTH,
    NAME_LENGTH,
    SPEC_LENGTH,
    TAG_LENGTH,
    TEMPLATE_NAME_LENGTH,
    VOCABULARY_LENGTH,
)

CHOICE_SCORE_KEYS = frozenset({"choice", "logprob", "length"})


def check_text(name: str, value: object, max_length: int, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string; got {value!r}")
    if len(value) > max_length:
        raise ValueError(f"{name} must be at most {max_length} characters; got {len(value)}")


def check_count(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer; got {value!r}")


def check_number(name: str, value: object, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number; got {value!r}")


def check_json(name: str, value: object) -> None:
    """Portable JSON only: no NaN or infinities (PostgreSQL rejects them), no odd objects."""
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be plain JSON with finite numbers ({exc})") from None


def check_template(name: str, content: str, content_hash: str) -> None:
    check_text("template name", name, TEMPLATE_NAME_LENGTH)
    if not isinstance(content, str):
        raise ValueError(f"template content must be a string; got {type(content).__name__}")
    check_text("content_hash", content_hash, HASH_LENGTH)


def check_dataset(
    name: str, path: str | None, format: str, content_hash: str, n_rows: int, columns: list[str]
) -> None:
    check_text("dataset name", name, NAME_LENGTH)
    if path is not None and not isinstance(path, str):
        raise ValueError(f"dataset path must be a string or None; got {path!r}")
    check_text("format", format, VOCABULARY_LENGTH)
    check_text("content_hash", content_hash, HASH_LENGTH)
    check_count("n_rows", n_rows)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ValueError(f"columns must be a list of column names; got {columns!r}")


def check_run(
    name: str | None,
    scoring: str,
    config: dict[str, Any],
    n_examples: int,
    configs: list[ComparisonConfigSpec],
    host: str | None,
    pid: int | None,
) -> None:
    check_text("run name", name, NAME_LENGTH, optional=True)
    check_choice("scoring", scoring, SCORINGS)
    if not isinstance(config, dict):
        raise ValueError(f"config must be a dict; got {type(config).__name__}")
    check_json("config", config)
    check_count("n_examples", n_examples)
    if not configs:
        raise ValueError("a comparison run needs at least one config")
    for spec in configs:
        check_config_spec(spec)
    check_process(host, pid)


def check_process(host: str | None, pid: int | None) -> None:
    check_text("host", host, NAME_LENGTH, optional=True)
    check_count("pid", pid, optional=True)


def check_config_spec(spec: ComparisonConfigSpec) -> None:
    check_text("model_spec", spec.model_spec, SPEC_LENGTH)
    check_count("shots", spec.shots)
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int):
        raise ValueError(f"seed must be an integer; got {spec.seed!r}")
    check_choice("selection", spec.selection, SELECTIONS)
    check_text("label", spec.label, LABEL_LENGTH)


def check_result(result: ComparisonResult) -> None:
    check_count("example_index", result.example_index)
    if not isinstance(result.correct, bool):
        raise ValueError(f"correct must be a bool; got {result.correct!r}")
    if result.correct_norm is not None and not isinstance(result.correct_norm, bool):
        raise ValueError(f"correct_norm must be a bool or None; got {result.correct_norm!r}")
    check_number("latency_ms", result.latency_ms)
    check_number("score", result.score, optional=True)
    check_count("prompt_tokens", result.prompt_tokens, optional=True)
    check_count("completion_tokens", result.completion_tokens, optional=True)
    if result.choice_scores is not None:
        _check_choice_scores(result.choice_scores)
    if result.created_at is not None and result.created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware (UTC); got a naive datetime")


def clean_tag(tag: str) -> str:
    """`tag` with its runs of whitespace made single spaces; ValueError if it is empty, longer
    than TAG_LENGTH or holds a comma (tags are typed and shown comma-separated)."""
    cleaned = " ".join(str(tag or "").split())
    if not cleaned:
        raise ValueError("a tag must not be empty; type a word such as 'baseline'")
    if len(cleaned) > TAG_LENGTH or "," in cleaned:
        raise ValueError(
            f"tag {cleaned[:80]!r} must be at most {TAG_LENGTH} characters, without commas"
        )
    return cleaned


def _check_choice_scores(choice_scores: list[dict[str, Any]]) -> None:
    if not isinstance(choice_scores, list) or not all(
        isinstance(item, dict) and set(item) == CHOICE_SCORE_KEYS for item in choice_scores
    ):
        raise ValueError(
            'choice_scores must be a list of {"choice", "logprob", "length"} dicts; '
            f"got {choice_scores!r}"
        )
    check_json("choice_scores", choice_scores)
