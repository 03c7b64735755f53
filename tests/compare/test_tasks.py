"""lm-evaluation-harness task files with local data: the prompts the studio builds from one are
the harness's (description + shots joined by fewshot_delimiter + doc_to_text, then
target_delimiter + choice), unsupported keys are refused by name, and `studio compare --task`
runs one end to end."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from studio.compare.tasks import TaskError, load_task
from studio.hosting import HostingPolicy
from studio.settings import PROMPTS_DIR
from studio.templates import build_prompt
from tests.conftest import ROOT

DESKTOP = HostingPolicy.desktop()
ROWS = [
    ("a gripping , funny film", 1),
    ("dull and far too long", 0),
    ("the cast is wonderful", 1),
    ("i walked out halfway", 0),
    ("a small triumph", 1),
]
TASK = """\
task: tiny_sentiment
dataset_path: csv
dataset_kwargs:
  data_files:
    validation: valid.csv
    train: train.csv
validation_split: validation
fewshot_split: train
output_type: multiple_choice
description: "Classify each review.\\n\\n"
doc_to_text: "Review: {{sentence}}\\nSentiment:"
doc_to_target: label
doc_to_choice: ["negative", "positive"]
target_delimiter: " "
fewshot_delimiter: "\\n\\n"
num_fewshot: 2
fewshot_config:
  sampler: first_n
metric_list:
  - metric: acc
  - metric: acc_norm
metadata:
  version: 1.0
"""


def write_csv(path: Path, rows: list[tuple[str, int]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sentence", "label"])
        writer.writerows(rows)


def write_task(folder: Path, text: str = TASK) -> Path:
    """The tiny task and its two CSV files in `folder`; returns the task file."""
    write_csv(folder / "valid.csv", ROWS[2:])
    write_csv(folder / "train.csv", ROWS[:2])
    (folder / "tiny.yaml").write_text(text, encoding="utf-8")
    return folder / "tiny.yaml"


@pytest.fixture
def task_file(tmp_path: Path) -> Path:
    return write_task(tmp_path)


def harness_context(description: str, shots: list[tuple[str, int]], query: str) -> str:
    """The harness's context, written out from its documented rule."""
    choices = ["negative", "positive"]
    shot_text = "".join(
        f"Review: {s}\nSentiment:" + " " + choices[label] + "\n\n" for s, label in shots
    )
    return description + shot_text + f"Review: {query}\nSentiment:"


def test_the_prompts_are_the_harness_prompts(task_file: Path) -> None:
    task = load_task(task_file, DESKTOP)
    assert task.name == "lm-eval-tiny_sentiment" and task.shots == 2
    assert task.selection == "first" and task.metrics == ("acc", "acc_norm")
    assert task.data == task_file.parent / "valid.csv"
    assert task.shot_pool == task_file.parent / "train.csv"
    shots = [{"sentence": s, "label": str(label)} for s, label in ROWS[:2]]
    for k in (0, 1, 2):
        built = build_prompt(task.template, {"sentence": ROWS[3][0], "label": "0"}, shots[:k])
        assert built.text == harness_context("Classify each review.\n\n", ROWS[:k], ROWS[3][0])
        assert built.answer == "negative" and built.continuation_prefix == " "
    assert task.template.choices == ["negative", "positive"]


@pytest.mark.parametrize(
    ("change", "problem", "fix"),
    [
        ({"process_docs": "!function utils.process"}, "!function", "Jinja2 string"),
        ({"filter_list": [{"name": "x"}]}, "filter_list are not supported", "remove them"),
        ({"dataset_path": "glue"}, "is not local data", "dataset_path: csv"),
        ({"output_type": "generate_until"}, "not supported", "multiple_choice"),
        ({"doc_to_choice": "{{options}}"}, "fixed list", "list the choices"),
        ({"description": "No delimiter"}, "must be plain text ending", "end the description"),
        ({"fewshot_split": "validation"}, "shots would leak", "another split"),
        ({"fewshot_config": {"sampler": "balanced"}}, "first_n or default", "use one of them"),
        ({"metric_list": [{"metric": "f1"}]}, "not supported", "list only those"),
        ({"dataset_name": "sst2"}, "Hub configuration", "remove dataset_name"),
    ],
)
def test_unsupported_keys_are_refused_by_name(
    task_file: Path, change: dict, problem: str, fix: str
) -> None:
    spec = yaml.safe_load(TASK)
    hooks = {k: v for k, v in change.items() if str(v).startswith("!function")}
    spec.update({k: v for k, v in change.items() if k not in hooks})
    text = yaml.safe_dump(spec) + "".join(f"{k}: {v}\n" for k, v in hooks.items())
    task_file.write_text(text, encoding="utf-8")
    with pytest.raises(TaskError) as caught:
        load_task(task_file, DESKTOP)
    assert problem in str(caught.value) and fix in str(caught.value), str(caught.value)


def test_a_missing_data_file_names_it(task_file: Path) -> None:
    (task_file.parent / "valid.csv").unlink()
    with pytest.raises(ValueError, match=r"valid\.csv"):
        load_task(task_file, DESKTOP)


@pytest.mark.model
def test_studio_compare_runs_a_task_and_saves_its_template(
    task_file: Path, fresh_home: Path, tmp_path: Path
) -> None:
    library = tmp_path / "library"
    shutil.copytree(PROMPTS_DIR, library)
    out = tmp_path / "out.json"
    env = {
        **os.environ,
        "STUDIO_HOME": str(fresh_home),
        "STUDIO_PROMPTS_DIR": str(library),
        "HF_HUB_OFFLINE": "1",
        "STUDIO_OFFLINE": "1",
    }
    command = [
        str(Path(sys.executable).with_name("studio")),
        "compare",
        "--task",
        str(task_file),
        "--model",
        "smollm2-135m-instruct",
        "--shots",
        "0,2",
        "--json",
        str(out),
    ]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "template saved lm-eval-tiny_sentiment v1" in result.stdout
    assert (library / "lm-eval-tiny_sentiment.yaml").is_file()
    rows = json.loads(out.read_text())
    assert [(r["template"], r["shots"], r["n"]) for r in rows] == [
        ("lm-eval-tiny_sentiment", 0, 3),
        ("lm-eval-tiny_sentiment", 2, 3),
    ]
    clash = subprocess.run(
        [*command[:4], "--data", str(task_file.parent / "valid.csv")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert clash.returncode == 2 and "drop --data" in clash.stderr
