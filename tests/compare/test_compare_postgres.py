"""One comparison end to end on PostgreSQL: `studio compare` in a subprocess with STUDIO_DB_URL on
a throwaway server (tests/pg.py), the real bundled model, and the stored rows read back.

The same run on SQLite is the reference: both databases must hold the same run, configs and
per-example rows (prompts, predictions, verdicts, choice scores).
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
LIMIT = 6
SHOTS = (0, 2)
ARGS = (
    "compare",
    "--data",
    "assets/sample/reviews.csv",
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


def comparable(result: ComparisonResult) -> tuple:
    """Everything a result row stores except its id and time, scores rounded to float noise."""
    scores = [
        (score["choice"], round(score["logprob"], 4), score["length"])
        for score in result.choice_scores or []
    ]
    return (
        result.example_index,
        result.prompt_text,
        result.gold,
        result.prediction,
        result.correct,
        result.correct_norm,
        result.prompt_tokens,
        scores,
    )


def test_a_comparison_stores_the_same_rows_on_postgresql_as_on_sqlite(
    fresh_home: Path, tmp_path: Path, postgres_url: str
) -> None:
    sqlite_url = f"sqlite:///{tmp_path / 'reference.db'}"
    on_postgres = compare(fresh_home, postgres_url, tmp_path / "postgres.json")
    on_sqlite = compare(fresh_home, sqlite_url, tmp_path / "sqlite.json")

    listed = studio("runs", "list", "--json", home=fresh_home, db_url=postgres_url)
    assert listed.returncode == 0, listed.stderr[-2000:]
    [listed_run] = json.loads(listed.stdout)
    run_id = on_postgres[0]["run_id"]
    assert listed_run["id"] == run_id and listed_run["status"] == "completed"
    assert listed_run["results_done"] == LIMIT * len(SHOTS)

    with Store(postgres_url) as postgres, Store(sqlite_url) as sqlite:
        run = postgres.get_comparison_run(run_id)
        reference = sqlite.get_comparison_run(on_sqlite[0]["run_id"])
        assert run is not None and reference is not None
        assert run.status == "completed" and run.scoring == "loglik"
        assert (
            run.n_examples == LIMIT and run.dataset.content_hash == reference.dataset.content_hash
        )
        assert [c.shots for c in run.configs] == list(SHOTS)
        assert run.config == reference.config

        rows = postgres.comparison_results(run_id)
        assert len(rows) == LIMIT * len(SHOTS)
        assert [comparable(r) for r in rows] == [
            comparable(r) for r in sqlite.comparison_results(reference.id)
        ]
        for summary, config in zip(on_postgres, run.configs, strict=True):
            stored = postgres.comparison_results(run_id, config.id)
            assert summary["n"] == len(stored) == LIMIT
            assert summary["accuracy"] == pytest.approx(sum(r.correct for r in stored) / LIMIT)
            assert all(r.prompt_text and r.choice_scores for r in stored)
        # A 2-shot prompt carries its demonstrations; the 0-shot prompt of the same example not.
        zero, two = rows[0], rows[LIMIT]
        assert zero.example_index == two.example_index
        assert len(two.prompt_text) > len(zero.prompt_text)
