"""`studio tune` and `studio jobs` as a user runs them: real subprocesses, a real store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.store import Store
from tests import needs
from tests.conftest import ROOT, SHARED_DATA

STUDIO = str(Path(sys.executable).with_name("studio"))
TRAIN = SHARED_DATA / "sst2" / "train.tsv"


def studio(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_ADAPTERS_DIR": str(home / "adapters"),
        "HF_HUB_OFFLINE": "1",
        "STUDIO_OFFLINE": "1",
    }
    return subprocess.run(
        [STUDIO, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=900
    )


def _runs(home: Path) -> list:
    with Store(f"sqlite:///{home / 'studio.db'}") as store:
        return store.list_tuning_runs()


def test_invalid_settings_exit_2_naming_the_field_and_queue_nothing(fresh_home: Path) -> None:
    result = studio(
        "tune", "--output", "adapters/x", "--data", "d.csv", "--lora-r", "0", home=fresh_home
    )
    assert result.returncode == 2
    assert "lora.r" in result.stderr and "greater than or equal to 1" in result.stderr
    result = studio("tune", "--output", "../../etc", "--data", "d.csv", home=fresh_home)
    assert result.returncode == 2 and "adapters folder" in result.stderr
    assert not (fresh_home / "studio.db").exists() or _runs(fresh_home) == []


@pytest.mark.model
def test_bad_data_is_reported_by_row_before_anything_is_queued(
    fresh_home: Path, tmp_path: Path
) -> None:
    data = tmp_path / "train.jsonl"
    rows = [
        {"instruction": "Say hi", "output": "hi"},
        {"instruction": "Say bye", "output": ""},
        {"instruction": "Count", "input": "1 2", "output": "3"},
        {"instruction": "Nothing"},
    ]
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    result = studio("tune", "--output", "bad", "--data", str(data), home=fresh_home)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "row 2" in result.stderr and "row 4" in result.stderr
    assert "row 1:" not in result.stderr and "row 3:" not in result.stderr
    assert _runs(fresh_home) == []
    assert not (fresh_home / "adapters" / "bad").exists()


@pytest.mark.model
def test_foreground_tune_writes_json_and_the_job_is_listed(
    fresh_home: Path, tmp_path: Path
) -> None:
    needs.shared_data("sst2", "train.tsv")
    out = tmp_path / "tune.json"
    result = studio(
        "tune",
        "--model", "smollm2-135m-instruct",
        "--data", str(TRAIN),
        "--template", "sst2-sentiment",
        "--output", "adapters/cli-lora",
        "--quantization", "4bit",
        "--lora-r", "8",
        "--lora-alpha", "16",
        "--max-steps", "3",
        "--lr", "1e-3",
        "--batch-size", "4",
        "--max-length", "128",
        "--eval-split", "0.2",
        "--limit", "20",
        "--json", str(out),
        home=fresh_home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Split: 16 train, 4 eval" in result.stdout and "memory estimate" in result.stdout
    report = json.loads(out.read_text())
    assert report["status"] == "completed" and report["steps"] == 3
    assert report["adapter_path"] == str(fresh_home / "adapters" / "cli-lora")
    for key in ("run_id", "train_loss", "eval_loss", "tokens_per_second", "wall_seconds"):
        assert report[key] is not None, key
    listed = studio("jobs", "list", "--json", home=fresh_home)
    [job] = json.loads(listed.stdout)
    assert (job["id"], job["status"]) == (report["run_id"], "completed")
    shown = studio("adapters", "list", "--json", home=fresh_home)
    assert "cli-lora" in shown.stdout
