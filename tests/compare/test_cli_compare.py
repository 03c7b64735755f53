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
        "--reference",
        "2",
        home=fresh_home,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "accuracy [95% CI]" in result.stdout
    assert "paired differences in accuracy against C2" in result.stdout
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
    check_paired_against_the_stored_rows(rows, fresh_home, reference=2)


def check_paired_against_the_stored_rows(rows: list[dict], home: Path, reference: int) -> None:
    """Each `paired` object equals what scipy computes from the stored per-example verdicts."""
    from scipy.stats import binomtest

    from studio.settings import load_settings
    from studio.store import Store

    assert "paired" not in rows[reference - 1]
    store = Store(load_settings(home=home, offline=True).database_url)
    try:
        run = store.get_comparison_run(rows[0]["run_id"])
        assert run is not None
        configs = sorted(run.configs, key=lambda c: c.position)
        verdicts = {c.id: {} for c in configs}
        for result in store.comparison_results(run.id):
            verdicts[result.config_id][result.example_index] = result.correct
    finally:
        store.close()
    base = verdicts[configs[reference - 1].id]
    raw = []
    for row, config in zip(rows, configs, strict=True):
        if config.position == reference - 1:
            continue
        ours = verdicts[config.id]
        only_this = sum(ours[i] and not base[i] for i in base)
        only_reference = sum(base[i] and not ours[i] for i in base)
        paired = row["paired"]
        assert paired["reference"] == reference and paired["test"] == "mcnemar-exact"
        assert paired["discordant"] == [only_this, only_reference]
        assert paired["n"] == 40
        assert paired["difference"] == pytest.approx((only_this - only_reference) / 40)
        assert paired["ci_low"] <= paired["difference"] <= paired["ci_high"]
        expected = (
            binomtest(only_this, only_this + only_reference, 0.5).pvalue
            if only_this + only_reference
            else 1.0
        )
        assert paired["p_value"] == pytest.approx(expected)
        raw.append(paired["p_value"])
        assert paired["adjustment"] == "holm"
    # Holm over the three comparisons: the smallest p times 3, then monotone.
    adjusted = sorted(row["paired"]["p_adjusted"] for row in rows if "paired" in row)
    assert adjusted[0] == pytest.approx(min(1.0, min(raw) * 3))
    assert adjusted == sorted(adjusted)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--shots", "-1"], "shots"),
        (["--template", "no-such-template"], "no-such-template"),
        (["--data", "does/not/exist.csv"], "exist.csv"),
        (["--reference", "3"], "--reference 3 is not a configuration of this grid"),
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
