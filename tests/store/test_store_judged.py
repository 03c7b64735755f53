"""Judges, samples and written datasets in the store (SQLite and PostgreSQL): a run keeps its
judge, a result its samples and a judgement set after it was stored, and dataset versions are
numbered per name, newest first, with their lineage."""

from __future__ import annotations

import pytest

from studio.store import Store
from tests.store.conftest import ResultFactory, RunFactory

JUDGE = {"model": "m", "template": "judge-pairwise", "template_version_id": None, "version": 1,
         "mode": "pairwise", "scoring": "loglik"}  # fmt: skip


def test_results_keep_samples_and_a_later_judgement(
    store: Store, make_run: RunFactory, make_result: ResultFactory
) -> None:
    run = make_run()
    samples = [{"sample": 1, "output": "a", "prediction": "a", "correct": True, "score": 1.0,
                "completion_tokens": 1}]  # fmt: skip
    result_id = store.add_comparison_result(make_result(run.configs[0].id, 0, samples=samples))
    (stored,) = store.comparison_results(run.id)
    assert stored.samples == samples and stored.judgement is None
    judgement = {"mode": "pointwise", "verdict": "yes", "score": 0.8, "prompt": "p"}
    store.set_result_judgement(result_id, judgement)
    (stored,) = store.comparison_results(run.id)
    assert stored.judgement == judgement
    with pytest.raises(ValueError, match="no comparison result with id 999999"):
        store.set_result_judgement(999999, judgement)


def test_a_run_keeps_its_judge(store: Store, make_run: RunFactory) -> None:
    run = make_run(judge=JUDGE)
    assert store.get_comparison_run(run.id).judge == JUDGE
    assert make_run().judge is None


def test_dataset_versions_are_numbered_per_name(store: Store) -> None:
    data = store.register_dataset("p.jsonl", "/d/p.jsonl", "jsonl", "c" * 64, 3, ["prompt"])
    first = store.save_dataset_version("pairs-a", "pairs", data.id, {"source": "c1"})
    second = store.save_dataset_version("pairs-a", "pairs", data.id, {"source": "c2"})
    other = store.save_dataset_version("pairs-b", "synthetic", data.id, {"generator": "m"})
    assert (first.version, second.version, other.version) == (1, 2, 1)
    assert [v.ref for v in store.dataset_versions()] == ["pairs-b@v1", "pairs-a@v2", "pairs-a@v1"]
    assert store.get_dataset_version("pairs-a").lineage == {"source": "c2"}
    assert store.get_dataset_version("pairs-a", 1).dataset.content_hash == "c" * 64
    assert store.get_dataset_version("pairs-a", 3) is None
    with pytest.raises(ValueError, match="kind must be one of pairs, synthetic"):
        store.save_dataset_version("x", "other", data.id, {})
