"""One comparison end to end on PostgreSQL: `studio compare` in a subprocess with STUDIO_DB_URL on
a throwaway server (tests/pg.py), the real bundled model, and the stored rows read back: the
run, its data set, its configs and every scored row (prompt, choice scores, verdicts) agree with
each other and with what the command printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.store import ComparisonResult, Store
from tests.conftest import ROOT
from tests.pg import require_postgres

STUDIO = str(Path(sys.executable).with_name("studio"))
REVIEWS = "studio/samples/reviews.csv"
LIMIT = 6
SHOTS = (0, 2)
ARGS = (
    "compare",
    "--data",
    REVIEWS,
    "--pool-size",
    "20",
    "--template",
    "reviews-sentiment",
    "--model",
    "smollm2-135m-instruct",
    "--shots",
    ",".join(map(str, SHOTS)),
    "--seeds",
    "1",
    "--selection",
    "balanced",
    "--scoring",
    "loglik",
    "--limit",
    str(LIMIT),
)

pytestmark = pytest.mark.model


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with require_postgres() as url:
        yield url


def studio(*args: str, home: Path, db_url: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_DB_URL": db_url,
        "HF_HUB_OFFLINE": "1",
        "STUDIO_OFFLINE": "1",
    }
    return subprocess.run(
        [STUDIO, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900
    )


def compare(home: Path, db_url: str, out: Path) -> list[dict]:
    result = studio(*ARGS, "--json", str(out), home=home, db_url=db_url)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(out.read_text())


def check_row(row: ComparisonResult) -> None:
    """A stored loglik row is self-consistent: the prediction is the most likely choice."""
    assert row.prompt_text and row.choice_scores is not None
    scores = {score["choice"]: score["logprob"] for score in row.choice_scores}
    assert set(scores) == {"positive", "negative"} and row.gold in scores
    assert row.prediction == max(scores, key=lambda choice: scores[choice])
    assert row.correct == (row.prediction == row.gold)
    assert row.correct_norm is not None and row.prompt_tokens > 0


def user_turn(prompt: str) -> str:
    """The example's own 'Review: …' line of a rendered prompt (its last one)."""
    return [line for line in prompt.splitlines() if line.startswith("Review: ")][-1]


def test_a_comparison_runs_end_to_end_on_postgresql(
    fresh_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    summaries = compare(fresh_home, postgres_url, tmp_path / "postgres.json")
    run_id = summaries[0]["run_id"]

    listed = studio("runs", "list", "--json", home=fresh_home, db_url=postgres_url)
    assert listed.returncode == 0, listed.stderr[-2000:]
    [listed_run] = json.loads(listed.stdout)
    assert listed_run["id"] == run_id and listed_run["status"] == "completed"
    assert listed_run["results_done"] == LIMIT * len(SHOTS)

    with Store(postgres_url) as store:
        run = store.get_comparison_run(run_id)
        assert run is not None and run.status == "completed" and run.scoring == "loglik"
        assert run.n_examples == LIMIT and run.finished_at is not None
        # The evaluation part of the file: 60 rows less the 20 held out as the shot pool.
        assert (run.dataset.n_rows, run.dataset.columns) == (40, ["text", "label"])
        assert run.shot_pool is not None and run.shot_pool.n_rows == 20
        assert [(c.model_spec, c.template_name, c.shots) for c in run.configs] == [
            ("smollm2-135m-instruct", "reviews-sentiment", shots) for shots in SHOTS
        ]
        rows = store.comparison_results(run_id)
        assert len(rows) == LIMIT * len(SHOTS)
        for row in rows:
            check_row(row)
        for summary, config in zip(summaries, run.configs, strict=True):
            stored = store.comparison_results(run_id, config.id)
            assert summary["n"] == len(stored) == LIMIT
            assert summary["accuracy"] == pytest.approx(sum(r.correct for r in stored) / LIMIT)
            assert [r.example_index for r in stored] == list(range(LIMIT))
    # The same examples in both configs; the 2-shot prompt adds demonstrations before each one.
    zero, two = rows[:LIMIT], rows[LIMIT:]
    for plain, shot in zip(zero, two, strict=True):
        assert plain.gold == shot.gold
        assert user_turn(plain.prompt_text) == user_turn(shot.prompt_text)
        assert shot.prompt_text.count("Review: ") == 3 and plain.prompt_text.count("Review: ") == 1
