"""Comparison runs: creation with configs, row-by-row results, life cycle and listing."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event

from studio.store import ComparisonConfig, ComparisonRun, Store

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)

# Starts a run, stores five results one by one, then dies without closing anything.
CRASHING_RUN = """
import os, sys
from studio.store import ComparisonConfigSpec, ComparisonResult, Store
store = Store(sys.argv[1])
version = store.save_template_version("t", "x", "h")
data = store.register_dataset("d", None, "csv", "c" * 64, 10, ["x"])
spec = ComparisonConfigSpec(
    model_spec="m", template_version_id=version.id, shots=0, seed=1, selection="first", label="m"
)
run = store.create_comparison_run(
    name=None, scoring="generate", config={}, dataset_id=data.id, shot_pool_id=None,
    n_examples=10, configs=[spec], host="here", pid=os.getpid(),
)
for index in range(5):
    store.add_comparison_result(ComparisonResult(
        config_id=run.configs[0].id, example_index=index, prompt_text="p", gold="g",
        prediction="g", correct=True, latency_ms=1.0, prompt_tokens=1,
    ))
print(run.id, os.getpid(), flush=True)
os._exit(9)
"""


def test_create_run_with_three_configs(store: Store, make_run) -> None:
    pool = store.register_dataset("pool", "/data/pool.jsonl", "jsonl", "p" * 64, 50, ["x", "y"])
    run = make_run(shot_pool_id=pool.id, config={"nested": {"list": (1, 2.5, "é")}, "n": None})
    assert isinstance(run, ComparisonRun)
    assert (run.status, run.scoring, run.name, run.n_examples) == (
        "running",
        "loglik",
        "sentiment sweep",
        20,
    )
    assert run.config == {"nested": {"list": [1, 2.5, "é"]}, "n": None}
    assert run.dataset.name == "sst2" and run.shot_pool == pool
    assert run.finished_at is None and run.error is None and run.results_done == 0
    assert [c.position for c in run.configs] == [0, 1, 2]
    assert [(c.template_name, c.template_version, c.shots) for c in run.configs] == [
        ("sst2-sentiment", 1, 0),
        ("sst2-sentiment", 2, 5),
        ("sst2-sentiment", 2, 10),
    ]
    first = run.configs[0]
    assert isinstance(first, ComparisonConfig) and first.run_id == run.id
    assert first.label == "smollm2 · sst2-sentiment@v1 · 0-shot · seed 1"
    assert (first.model_spec, first.seed, first.selection) == ("smollm2-135m-instruct", 1, "first")
    assert store.get_comparison_run(run.id) == run
    assert store.get_comparison_run(9999) is None


def test_results_round_trip_in_table_order(store: Store, make_run, make_result) -> None:
    run = make_run()
    last, first = run.configs[2].id, run.configs[0].id
    generated = make_result(
        last,
        3,
        prediction=None,
        correct=False,
        correct_norm=None,
        choice_scores=None,
        output="Ça va 🙂",
        score=0.4,
        completion_tokens=7,
        created_at=T0,
    )
    for result in (generated, make_result(first, 1), make_result(first, 0)):
        store.add_comparison_result(result)
    results = store.comparison_results(run.id)
    assert [(r.config_id, r.example_index) for r in results] == [(first, 0), (first, 1), (last, 3)]
    assert all(r.id is not None and r.created_at is not None for r in results)
    assert results[2] == dataclasses.replace(generated, id=results[2].id)
    assert results[0] == dataclasses.replace(
        make_result(first, 0), id=results[0].id, created_at=results[0].created_at
    )
    assert store.comparison_results(run.id, config_id=last) == [results[2]]
    assert store.comparison_results(9999) == []


def test_done_indices_and_results_done(store: Store, make_run, make_result) -> None:
    run = make_run()
    for index in (0, 2, 5):
        store.add_comparison_result(make_result(run.configs[1].id, index))
    store.add_comparison_result(make_result(run.configs[0].id, 0))
    assert store.done_indices(run.configs[1].id) == {0, 2, 5}
    assert store.done_indices(run.configs[2].id) == set()
    stored = store.get_comparison_run(run.id)
    assert stored is not None and stored.results_done == 4


def test_duplicate_result_is_a_value_error(store: Store, make_run, make_result) -> None:
    run = make_run()
    config_id = run.configs[0].id
    first_id = store.add_comparison_result(make_result(config_id, 0))
    with pytest.raises(ValueError, match="already has a result for example 0"):
        store.add_comparison_result(make_result(config_id, 0, gold="negative"))
    (kept,) = store.comparison_results(run.id)
    assert kept.id == first_id and kept.gold == "positive"
    store.add_comparison_result(make_result(config_id, 1))  # the store still writes


def test_result_for_an_unknown_config_is_a_value_error(store: Store, make_result) -> None:
    with pytest.raises(ValueError, match="no comparison config with id 77"):
        store.add_comparison_result(make_result(77, 0))


def test_results_survive_a_crash_and_reopening(db_url: str) -> None:
    crashed = subprocess.run(
        [sys.executable, "-c", CRASHING_RUN, db_url], capture_output=True, text=True, timeout=120
    )
    assert crashed.returncode == 9, crashed.stderr
    run_id, pid = map(int, crashed.stdout.split())
    with Store(db_url) as reopened:
        run = reopened.get_comparison_run(run_id)
        assert run is not None and run.status == "running" and run.results_done == 5
        assert reopened.done_indices(run.configs[0].id) == set(range(5))
        assert [r.example_index for r in reopened.comparison_results(run_id)] == list(range(5))
        assert reopened.mark_dead_runs_interrupted(_process_alive) == [run_id]
        run = reopened.get_comparison_run(run_id)
        assert run is not None and run.status == "interrupted"
        assert run.error == f"the process running it (pid {pid}) ended before it finished"


@pytest.mark.parametrize("status", ["completed", "stopped", "failed", "interrupted"])
def test_finish_run(store: Store, make_run, status: str) -> None:
    run = make_run()
    error = None if status == "completed" else "CUDA out of memory"
    store.finish_comparison_run(run.id, status, error)
    stored = store.get_comparison_run(run.id)
    assert stored is not None
    assert (stored.status, stored.error) == (status, error)
    assert stored.finished_at is not None
    assert abs(stored.finished_at - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_finish_rejects_bad_status_and_unknown_run(store: Store, make_run) -> None:
    run = make_run()
    for status in ("running", "done"):
        with pytest.raises(ValueError, match="status must be one of"):
            store.finish_comparison_run(run.id, status)
    with pytest.raises(ValueError, match="no comparison run with id 9999"):
        store.finish_comparison_run(9999, "completed")


def test_mark_dead_runs_interrupted_marks_only_dead_ones(store: Store, make_run) -> None:
    alive = make_run(host="lab-1", pid=100)
    dead = make_run(host="lab-1", pid=200)
    unknown = make_run(host=None, pid=None)
    finished = make_run(host="lab-1", pid=300)
    store.finish_comparison_run(finished.id, "completed")
    asked: list[tuple[str | None, int | None]] = []

    def is_alive(host: str | None, pid: int | None) -> bool:
        asked.append((host, pid))
        return pid == 100

    assert store.mark_dead_runs_interrupted(is_alive) == [dead.id, unknown.id]
    assert sorted(asked, key=str) == sorted([("lab-1", 100), ("lab-1", 200), (None, None)], key=str)
    status = {run.id: (run.status, run.error) for run in store.list_comparison_runs()}
    assert status[alive.id] == ("running", None)
    assert status[dead.id] == (
        "interrupted",
        "the process running it (pid 200) ended before it finished",
    )
    assert status[unknown.id] == ("interrupted", "the process running it ended before it finished")
    assert status[finished.id] == ("completed", None)
    assert store.mark_dead_runs_interrupted(is_alive) == []


def test_resume_sets_an_interrupted_run_running_again(store: Store, make_run) -> None:
    run = make_run(pid=1)
    with pytest.raises(ValueError, match=r"can be resumed; run \d+ is running"):
        store.resume_comparison_run(run.id)
    store.mark_dead_runs_interrupted(lambda host, pid: False)
    resumed = store.resume_comparison_run(run.id, host="lab-2", pid=2)
    assert (resumed.status, resumed.finished_at, resumed.error) == ("running", None, None)
    assert store.mark_dead_runs_interrupted(lambda host, pid: (host, pid) == ("lab-2", 2)) == []
    with pytest.raises(ValueError, match="no comparison run"):
        store.resume_comparison_run(9999)


def test_list_runs_newest_first_with_counts(store: Store, make_run, make_result) -> None:
    runs = [make_run(name=f"run {n}") for n in range(3)]
    for n, run in enumerate(runs):
        for index in range(n * 2):
            store.add_comparison_result(make_result(run.configs[index % 3].id, index))
    store.finish_comparison_run(runs[0].id, "completed")
    listed = store.list_comparison_runs()
    assert [r.name for r in listed] == ["run 2", "run 1", "run 0"]
    assert [r.results_done for r in listed] == [4, 2, 0]
    assert all(len(r.configs) == 3 for r in listed)
    assert [r.name for r in store.list_comparison_runs(limit=2)] == ["run 2", "run 1"]
    assert [r.name for r in store.list_comparison_runs(status="completed")] == ["run 0"]
    assert store.list_comparison_runs(status="failed") == []
    with pytest.raises(ValueError, match="status must be one of"):
        store.list_comparison_runs(status="finished")


def test_listing_runs_takes_the_same_queries_for_many_runs(store: Store, make_run) -> None:
    make_run()
    with _counting_selects() as one_run:
        store.list_comparison_runs()
    for _ in range(5):
        make_run()
    with _counting_selects() as six_runs:
        assert len(store.list_comparison_runs()) == 6
    assert len(six_runs) == len(one_run) <= 3


def _process_alive(host: str | None, pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextmanager
def _counting_selects() -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", count)
