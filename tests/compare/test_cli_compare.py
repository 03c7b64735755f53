"""`studio compare` and `studio runs list` as a user runs them: real subprocesses, real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.compare.config import load_config
from tests.conftest import ROOT

STUDIO = str(Path(sys.executable).with_name("studio"))
SAMPLE_CONFIGS = sorted((ROOT / "studio" / "samples").glob("compare-*.yaml"))


def studio(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1", "STUDIO_OFFLINE": "1"}
    return subprocess.run(
        [STUDIO, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900
    )


@pytest.mark.parametrize("path", SAMPLE_CONFIGS, ids=lambda p: p.name)
def test_shipped_run_configs_start_with_a_comment_and_validate(path: Path) -> None:
    assert path.read_text().startswith("# ")
    config = load_config(path)
    assert config.n_configs >= 2


@pytest.mark.model
def test_compare_writes_json_and_lists_the_run(fresh_home: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    result = studio(
        "compare",
        "--config",
        "studio/samples/compare-reviews.yaml",
        "--json",
        str(out),
        home=fresh_home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "accuracy [95% CI]" in result.stdout
    rows = json.loads(out.read_text())
    assert len(rows) == 4  # shots 0,3 × seeds 1,2
    for row in rows:
        for key in (
            "model",
            "template",
            "shots",
            "seed",
            "n",
            "accuracy",
            "ci_low",
            "ci_high",
            "examples_per_s",
            "run_id",
        ):
            assert key in row
        assert row["n"] == 40 and row["ci_low"] <= row["accuracy"] <= row["ci_high"]
    listed = json.loads(studio("runs", "list", "--json", home=fresh_home).stdout)
    assert listed[0]["id"] == rows[0]["run_id"] and listed[0]["status"] == "completed"
    assert listed[0]["results_done"] == 160


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shots", "-1"], "shots"),
        (["--template", "no-such-template"], "no-such-template"),
        (["--data", "does/not/exist.csv"], "exist.csv"),
    ],
)
def test_invalid_settings_exit_non_zero_with_a_message(args, message, fresh_home: Path) -> None:
    base = [
        "compare",
        "--data",
        "studio/samples/reviews.csv",
        "--template",
        "reviews-sentiment",
        "--model",
        "smollm2-135m-instruct",
        "--limit",
        "2",
    ]
    result = studio(*base, *args, home=fresh_home)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
