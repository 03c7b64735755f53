"""Comparison values the store refuses with ValueError, before anything is written."""

from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Any

import pytest

from studio.store import Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"scoring": "accuracy"}, "scoring must be one of"),
        ({"config": {"temperature": math.nan}}, "config must be plain JSON"),
        ({"config": {"when": T0}}, "config must be plain JSON"),
        ({"n_examples": -1}, "n_examples"),
        ({"name": "n" * 257}, "run name"),
        ({"configs": []}, "at least one config"),
        ({"dataset_id": 9999}, "dataset_id 9999 is not a registered dataset"),
        ({"shot_pool_id": 9999}, "shot_pool_id 9999"),
        ({"pid": -5}, "pid"),
    ],
)
def test_invalid_runs_are_rejected_and_store_nothing(
    store: Store, make_run, overrides: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        make_run(**overrides)
    assert store.list_comparison_runs() == []


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"selection": "best"}, "selection must be one of"),
        ({"template_version_id": 9999}, "no template version with id 9999"),
        ({"shots": -1}, "shots"),
        ({"label": ""}, "label"),
    ],
)
def test_invalid_configs_are_rejected(
    store: Store, make_run, make_spec, overrides: dict[str, Any], match: str
) -> None:
    version = store.save_template_version("t", "x", "h")
    with pytest.raises(ValueError, match=match):
        make_run(configs=[make_spec(version), make_spec(version, **overrides)])
    assert store.list_comparison_runs() == []


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"choice_scores": [{"choice": "a", "logprob": -math.inf, "length": 1}]}, "finite"),
        ({"choice_scores": [{"choice": "a", "logprob": -1.0}]}, "choice_scores must be"),
        ({"latency_ms": math.nan}, "latency_ms"),
        ({"score": math.inf}, "score"),
        ({"correct": 1}, "correct must be a bool"),
        ({"example_index": -1}, "example_index"),
        ({"created_at": datetime(2025, 1, 1)}, "timezone-aware"),
    ],
)
def test_invalid_results_are_rejected(
    store: Store, make_run, make_result, overrides: dict[str, Any], match: str
) -> None:
    run = make_run()
    fields = {"config_id": run.configs[0].id, "example_index": 0, **overrides}
    with pytest.raises(ValueError, match=match):
        store.add_comparison_result(make_result(**fields))
    assert store.comparison_results(run.id) == []
