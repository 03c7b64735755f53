"""The comparison engine end to end on real SmolLM2, real SST-2 rows and a real SQLite store."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from studio.compare import summarize_run
from studio.compare.config import CompareConfigError, build_config
from studio.compare.engine import RowDone, RunFinished, RunStarted
from studio.services import create_services
from tests import needs
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.model

SST2 = SHARED_DATA / "sst2"


@pytest.fixture
def services(settings):
    needs.shared_data("sst2", "validation.tsv")
    services = create_services(settings)
    yield services
    services.close()


CHOICES = ["negative", "positive"]  # sst2-sentiment-completion's choices, in its order


def first_rows(n: int) -> list[tuple[str, str]]:
    """(sentence, gold answer) of the first n validation rows, read straight from the file."""
    lines = (SST2 / "validation.tsv").read_text(encoding="utf-8").splitlines()[1 : n + 1]
    return [(text, CHOICES[int(label)]) for text, label in (ln.rsplit("\t", 1) for ln in lines)]


def grid(**overrides):
    values = {
        "data": str(SST2 / "validation.tsv"),
        "shot_pool": str(SST2 / "train.tsv"),
        "templates": ["sst2-sentiment-completion"],
        "models": ["smollm2-135m-instruct"],
        "shots": [0, 2],
        "limit": 10,
    }
    values.update(overrides)
    return build_config(**values)


def test_a_small_grid_stores_every_row_with_its_exact_prompt(services) -> None:
    events = list(services.comparisons.run(grid()))
    started = events[0]
    assert isinstance(started, RunStarted) and started.total == 20
    rows = [e for e in events if isinstance(e, RowDone)]
    assert len(rows) == 20 and rows[-1].done == 20
    assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"

    run = services.store.get_comparison_run(started.run_id)
    assert run.status == "completed" and run.results_done == 20
    assert [c.shots for c in run.configs] == [0, 2]
    results = services.store.comparison_results(started.run_id)
    zero_shot = [r for r in results if r.config_id == run.configs[0].id]
    two_shot = [r for r in results if r.config_id == run.configs[1].id]
    expected = first_rows(10)
    for rows_of_config in (zero_shot, two_shot):  # one row per example: its own text and gold
        assert sorted(r.example_index for r in rows_of_config) == list(range(10))
        for r in rows_of_config:
            sentence, gold = expected[r.example_index]
            assert r.gold == gold and f"Review: {sentence}\nSentiment:" in r.prompt_text
            assert [s["choice"] for s in r.choice_scores] == CHOICES
            assert r.prediction in CHOICES and r.correct == (r.prediction == gold)
    first = min(zero_shot, key=lambda r: r.example_index)
    assert first.prompt_text == (
        "Each movie review is followed by its sentiment, positive or negative.\n\n"
        "Review: it 's a charming and often affecting journey . \nSentiment:"
    )
    assert first.gold == "positive"
    assert all(r.prompt_text.count("Sentiment:") == 3 for r in two_shot)

    summaries = summarize_run(services.store, started.run_id)
    assert sorted(s.config_id for s in summaries) == sorted(c.id for c in run.configs)
    for s in summaries:
        assert s.n == 10
        assert s.accuracy.low <= s.accuracy.value <= s.accuracy.high
        assert s.acc_norm is not None and s.examples_per_s > 0


def test_stop_keeps_finished_rows_and_marks_the_run_stopped(services) -> None:
    stop = threading.Event()
    events = []
    for event in services.comparisons.run(grid(shots=[0], limit=40, batch_rows=4), stop):
        events.append(event)
        if isinstance(event, RowDone) and event.done == 6:
            stop.set()
    run_id = events[0].run_id
    finished = events[-1]
    assert finished.status == "stopped"
    run = services.store.get_comparison_run(run_id)
    assert run.status == "stopped"
    assert 6 <= run.results_done < 40


def test_a_stopped_run_resumes_with_only_the_missing_rows(services) -> None:
    stop = threading.Event()
    first = []
    for event in services.comparisons.run(grid(shots=[0, 2], limit=8, batch_rows=4), stop):
        first.append(event)
        if isinstance(event, RowDone) and event.done == 5:
            stop.set()
    run_id = first[0].run_id
    assert services.store.get_comparison_run(run_id).status == "stopped"
    before = {(r.config_id, r.example_index): r for r in services.store.comparison_results(run_id)}
    events = list(services.comparisons.resume(run_id))
    assert events[-1].status == "completed"
    fresh = [e for e in events if isinstance(e, RowDone)]
    assert len(fresh) == 16 - len(before)  # nothing computed twice
    after = services.store.comparison_results(run_id)
    assert len(after) == 16
    every_cell = {
        (c.id, i) for c in services.store.get_comparison_run(run_id).configs for i in range(8)
    }
    assert {(r.config_id, r.example_index) for r in after} == every_cell
    for r in after:  # rows stored before the stop are untouched
        if (r.config_id, r.example_index) in before:
            assert r.id == before[(r.config_id, r.example_index)].id


def test_a_run_whose_process_died_is_marked_interrupted(services, settings) -> None:
    # A real child process starts a run and is killed mid-way; the next start-up notices.
    script = (
        "import os, sys\n"
        "from studio.services import create_services\n"
        "from studio.compare.config import build_config\n"
        "from studio.compare.engine import RowDone\n"
        "from studio.settings import load_settings\n"
        f"s = create_services(load_settings(home={str(settings.home)!r}, offline=True))\n"
        f"cfg = build_config(data={str(SST2 / 'validation.tsv')!r}, "
        "templates=['sst2-sentiment-completion'], models=['smollm2-135m-instruct'], limit=200, "
        "batch_rows=2)\n"
        "for e in s.comparisons.run(cfg):\n"
        "    if isinstance(e, RowDone) and e.done == 4:\n"
        "        os._exit(9)  # dies without finishing the run, like a SIGKILL\n"
    )
    subprocess.run([sys.executable, "-c", script], check=False, timeout=600)
    reopened = create_services(settings)
    runs = reopened.store.list_comparison_runs()
    assert runs[0].status == "interrupted"
    assert runs[0].results_done >= 4
    assert "ended before it finished" in runs[0].error


def test_invalid_settings_store_nothing(services) -> None:
    with pytest.raises(CompareConfigError, match="shots"):
        grid(shots=[-1])
    with pytest.raises(CompareConfigError, match="same file"):
        list(services.comparisons.run(grid(shot_pool=str(SST2 / "validation.tsv"))))
    with pytest.raises(ValueError, match=r"missing column|not a column"):
        list(services.comparisons.run(grid(templates=["qa-short-answer"], scoring="generate")))
    assert services.store.list_comparison_runs() == []
