"""`studio runs` as a user runs it: real subprocesses on a real store (runs recorded through the
store API, so no model loads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.store import ComparisonConfigSpec, ComparisonResult, MetricPoint, Store
from tests.conftest import ROOT

STUDIO = str(Path(sys.executable).with_name("studio"))


def studio(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STUDIO_HOME": str(home), "HF_HUB_OFFLINE": "1", "STUDIO_OFFLINE": "1"}
    env.pop("STUDIO_DB_URL", None)
    return subprocess.run(
        [STUDIO, *args], capture_output=True, text=True, env=env, cwd=ROOT, timeout=300
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A studio home holding comparison run 1 (3 examples) and tuning run 1 (2 steps)."""
    home = tmp_path / "home"
    home.mkdir()
    with Store(f"sqlite:///{home / 'studio.db'}") as store:
        version = store.save_template_version("reviews", "template: reviews", "hash-reviews")
        data = store.register_dataset("reviews.csv", "/d/reviews.csv", "csv", "a" * 64, 3, ["t"])
        run = store.create_comparison_run(
            name="zero-shot", scoring="loglik", config={"name": "zero-shot"}, dataset_id=data.id,
            shot_pool_id=None, n_examples=3,
            configs=[ComparisonConfigSpec(model_spec="smollm2-135m-instruct", shots=0, seed=1,
                                          template_version_id=version.id, selection="first",
                                          label="smollm2 · 0-shot")],
        )  # fmt: skip
        for i in range(3):
            store.add_comparison_result(ComparisonResult(
                config_id=run.configs[0].id, example_index=i, prompt_text=f"Review {i}\nLabel:",
                gold="positive", prediction="positive", correct=i != 1, latency_ms=3.0,
                prompt_tokens=4,
            ))  # fmt: skip
        store.finish_comparison_run(run.id, "completed")
        tuning = store.create_tuning_run(
            name="lora", config={"name": "lora"}, base_model="m", work_dir=str(home / "w"),
            adapter_path="/a/lora",
        )  # fmt: skip
        store.add_metric_points(
            tuning.id, [MetricPoint(step=1, loss=2.0), MetricPoint(step=2, loss=1.0)]
        )
        store.finish_tuning_run(tuning.id, "completed", summary={"train_loss": 1.0})
    return home


def test_list_show_annotate_export_and_delete(home: Path, tmp_path: Path) -> None:
    listed = json.loads(studio("runs", "list", "--json", home=home).stdout)
    assert [(r["ref"], r["id"], r["kind"]) for r in listed] == [
        ("t1", 1, "tuning"),
        ("c1", 1, "comparison"),
    ]
    comparison = listed[1]
    assert comparison["results_done"] == 3 and comparison["accuracy"] == pytest.approx(2 / 3)
    assert comparison["ci_low"] <= comparison["accuracy"] <= comparison["ci_high"]
    assert (
        studio("runs", "tag", "c1", "baseline", home=home).stdout.strip() == "c1: tagged baseline"
    )
    assert studio("runs", "rename", "1", "first try", home=home).returncode == 0  # bare = c1
    assert studio("runs", "note", "t1", "loss halves", home=home).returncode == 0
    table = studio("runs", "list", "--tag", "baseline", home=home).stdout
    assert "c1" in table and "first try" in table and "t1" not in table
    assert (
        "t1" in studio("runs", "list", "--kind", "tuning", "--search", "halves", home=home).stdout
    )

    shown = studio("runs", "show", "c1", home=home).stdout
    assert "c1 · first try · comparison · completed" in shown and "template: reviews@v1" in shown
    assert "accuracy [95% CI]" in shown and "tags: baseline" in shown
    document = json.loads(studio("runs", "show", "t1", "--json", home=home).stdout)
    assert document["note"] == "loss halves" and document["train_loss"] == 1.0

    out = tmp_path / "rows.jsonl"
    done = studio(
        "runs", "export", "c1", "t1", "--format", "jsonl", "--output", str(out), home=home
    )
    assert done.stdout.strip() == f"wrote 5 rows to {out}"
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["prompt"] == "Review 0\nLabel:" and rows[-1] == {
        **rows[-1], "run": "t1", "step": 2, "loss": 1.0,
    }  # fmt: skip

    refused = studio("runs", "delete", "c1", home=home)
    assert refused.returncode == 2 and "add --yes to confirm" in refused.stderr
    deleted = studio("runs", "delete", "c1", "--yes", home=home)
    assert "Deleted comparison c1 (1 configs, 3 results, 1 tags)." in deleted.stdout
    assert "template reviews@v1" in deleted.stdout
    missing = studio("runs", "show", "c1", home=home)
    assert missing.returncode == 2 and "no comparison run c1" in missing.stderr


def test_bundle_moves_runs_to_another_studio(home: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "team.zip"
    made = studio("runs", "bundle", "export", "c1", "t1", "--output", str(bundle), home=home)
    assert made.returncode == 0, made.stderr
    other = tmp_path / "other"
    other.mkdir()
    imported = studio("runs", "bundle", "import", str(bundle), home=other)
    assert imported.returncode == 0, imported.stderr
    assert "c1->c1, t1->t1" in imported.stdout
    again = studio("runs", "bundle", "import", str(bundle), home=other).stdout
    assert "c1->c2" in again and "already here: 1 datasets, 1 template versions" in again
    bad = studio("runs", "bundle", "import", str(home / "studio.db"), home=other)
    assert bad.returncode == 2 and "not a zip file" in bad.stderr and "Traceback" not in bad.stderr
    assert len(json.loads(studio("runs", "list", "--json", home=other).stdout)) == 4


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "x9"], "is not a run id"),
        (["tag", "a1", "x"], "only comparison and tuning runs can be tagged"),
        (["export", "c1", "--format", "xml", "--output", "o"], "invalid choice"),
        (["list", "--since", "yesterday"], "invalid fromisoformat value"),
    ],
)
def test_bad_input_exits_2_with_a_message(home: Path, args: list[str], message: str) -> None:
    result = studio("runs", *args, home=home)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
