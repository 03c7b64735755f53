"""The Start here sample project: its data, its template and its three run configs."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from studio.compare.metrics import Estimate
from studio.compare.prepare import prepare_run
from studio.compare.summary import ConfigSummary
from studio.datasets import load_dataset
from studio.hosting import HostingPolicy
from studio.quickstart import sample
from studio.templates import load_template, render_fields
from studio.tuning.config import TuneConfig
from tests.conftest import ROOT

LABELS = {"billing", "shipping", "technical", "account"}
START_CONFIGS = sorted((ROOT / "studio" / "samples").glob("start-*.yaml"))


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.parametrize("path", [sample.TRAIN_FILE, sample.TEST_FILE], ids=lambda p: p.name)
def test_ticket_files_are_balanced_utf8_csv_with_the_four_labels(path: Path) -> None:
    rows = _rows(path)
    assert list(rows[0]) == ["text", "label"]
    counts = Counter(row["label"] for row in rows)
    assert set(counts) == LABELS
    assert len(set(counts.values())) == 1, f"unbalanced labels: {counts}"
    assert all(row["text"].strip() for row in rows)
    assert len({row["text"] for row in rows}) == len(rows), "duplicate tickets"
    dataset = load_dataset(path, policy=HostingPolicy.desktop())  # the studio's own reader agrees
    assert len(dataset) == len(rows) and dataset.columns == ["text", "label"]


def test_train_and_test_are_disjoint_and_sized_for_the_loop() -> None:
    train, test = _rows(sample.TRAIN_FILE), _rows(sample.TEST_FILE)
    assert 160 <= len(train) <= 240 and 60 <= len(test) <= 80
    overlap = {r["text"].lower() for r in train} & {r["text"].lower() for r in test}
    assert not overlap, f"tickets in both files: {sorted(overlap)[:3]}"
    # the first rows are mixed, so even `first` shot selection sees several teams
    assert len({row["label"] for row in train[:8]}) >= 3


def test_support_template_renders_a_ticket_with_the_four_choices() -> None:
    template = load_template("support-tickets")
    assert template.mode == "chat" and set(template.choices or []) == LABELS
    row = _rows(sample.TEST_FILE)[0]
    rendered = render_fields(template, row)
    assert rendered.prompt == f"Ticket: {row['text']}\nTeam:"
    assert rendered.answer == row["label"]
    assert rendered.system is not None and all(label in rendered.system for label in LABELS)
    assert (ROOT / "studio" / "prompts" / "support-tickets.yaml").read_text().startswith("# ")


@pytest.mark.parametrize("path", START_CONFIGS, ids=lambda p: p.name)
def test_start_configs_say_how_to_use_them(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# ")
    assert f"--config studio/samples/{path.name}" in text


def test_compare_configs_prepare_from_any_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the UI's server may run anywhere
    first = prepare_run(sample.compare_config(), HostingPolicy.desktop())
    assert len(first.evaluation) == len(_rows(sample.TEST_FILE))
    assert first.pool is not None and len(first.pool) == len(_rows(sample.TRAIN_FILE))
    assert {cell.shots for cell in first.cells} == {0, 4}
    again = sample.compare_config(sample.ADAPTER_COMPARE_CONFIG)
    assert again.data == sample.compare_config().data
    assert f"adapters/{sample.adapter_name()}" in again.models
    assert again.templates == first.config.templates


def test_tune_config_trains_the_adapter_step_three_compares(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = sample.tune_config()
    assert isinstance(config, TuneConfig)
    assert Path(config.data.path) == sample.TRAIN_FILE and Path(config.data.path).is_file()
    assert config.data.template == "support-tickets"
    assert config.model.quantization == "4bit"
    assert config.training.max_steps is not None and config.training.max_steps <= 60
    assert config.data.max_length <= 256


def test_adapter_ready_needs_an_adapter_config(settings) -> None:
    assert not sample.adapter_ready(settings)
    folder = sample.adapter_folder(settings)
    folder.mkdir(parents=True)
    assert not sample.adapter_ready(settings)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    assert sample.adapter_ready(settings)


def _summary(position: int, model: str, shots: int, seed: int, value: float) -> ConfigSummary:
    estimate = Estimate(value, value - 0.1, value + 0.1, 72)
    return ConfigSummary(position, position, "", model, "t", 1, shots, seed, 72, estimate,
                         None, None, 1.0)  # fmt: skip


def test_headline_averages_seeds_per_model_and_shot_count() -> None:
    summaries = [
        _summary(0, "base", 0, 1, 0.5),
        _summary(1, "base", 4, 1, 0.6),
        _summary(2, "base", 4, 2, 0.7),
        _summary(3, "adapters/x", 0, 1, 0.9),
    ]
    lines = sample.headlines(summaries)
    assert [(h.model, h.shots, h.n_seeds) for h in lines] == [
        ("base", 0, 1),
        ("base", 4, 2),
        ("adapters/x", 0, 1),
    ]
    assert lines[1].accuracy == pytest.approx(0.65)
    text = sample.headline_text(summaries)
    assert text == "base: 0-shot 0.500, 4-shot 0.650 (mean of 2 seeds); adapters/x: 0-shot 0.900"


def _studio(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_ADAPTERS_DIR": str(home / "adapters"),
        "HF_HUB_OFFLINE": "1",
        "STUDIO_OFFLINE": "1",
    }
    env.pop("STUDIO_DB_URL", None)
    studio = str(Path(sys.executable).with_name("studio"))
    return subprocess.run(
        [studio, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=1800
    )


def test_quickstart_refuses_bad_numbers_before_anything_runs(fresh_home: Path) -> None:
    result = _studio("quickstart", "--limit", "0", home=fresh_home, cwd=fresh_home)
    assert result.returncode == 2 and "--limit" in result.stderr
    assert not (fresh_home / "studio.db").exists()


@pytest.mark.model
def test_quickstart_runs_the_whole_loop_from_any_directory(
    fresh_home: Path, tmp_path: Path
) -> None:
    result = _studio(
        "quickstart", "--limit", "2", "--max-steps", "1", home=fresh_home, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "Step 1/3: studio compare --config studio/samples/start-compare.yaml" in out
    assert "1 optimizer steps" in out and "completed" in out
    assert out.count("mean accuracy") == 2
    assert "adapters/start-tickets: 0-shot" in out  # step 3 scored the adapter
    assert (fresh_home / "adapters" / "start-tickets" / "adapter_config.json").is_file()
