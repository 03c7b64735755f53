"""A studio with real runs for the Experiments engine tests.

The runs are made once per session (`lab_runs`): two real comparison runs of SmolLM2 over the
project's sample reviews (12 examples; 3-shot, and 0- vs 3-shot) and one real tuning run (a 2-step
LoRA job in its own worker process), all in a fresh STUDIO_HOME with its own adapters folder.
No test touches that studio. Tests get a copy of it (store, adapters, run folders, own Services):
`lab` is one copy per module, `scratch_lab` a fresh copy per test, for a test that adds, deletes
or tags runs, so what one test changes is never what another test reads.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from studio.compare.config import build_config
from studio.compare.engine import RunFinished
from studio.services import Services, create_services
from studio.settings import load_settings
from studio.store import TuningRun
from studio.tuning.config import TuneConfig, flat_config
from studio.tuning.jobs import check_launch, queue_run, start_next
from tests.conftest import ROOT

REVIEWS = ROOT / "studio" / "samples" / "reviews.csv"


@dataclass
class Lab:
    services: Services
    three_shot: int  # comparison run ids
    shots_sweep: int
    tuning: int  # tuning run id


def compare_config(shots: list[int], name: str):
    return build_config(
        name=name, data=str(REVIEWS), pool_size=20, templates=["reviews-sentiment"],
        models=["smollm2-135m-instruct"], shots=shots, seeds=[1], limit=12, selection="first",
    )  # fmt: skip


def tune_config(name: str) -> TuneConfig:
    return flat_config(
        name=name, model="smollm2-135m-instruct", quantization="none", data=str(REVIEWS),
        format="template", template="reviews-sentiment", limit=16, eval_split=0.25,
        batch_size=4, max_length=96, max_steps=2, lr=1e-3, lora_r=4, eval_steps=1, save_steps=2,
    )  # fmt: skip


def run_comparison(services: Services, shots: list[int], name: str) -> int:
    events = list(services.comparisons.run(compare_config(shots, name)))
    finished = events[-1]
    assert isinstance(finished, RunFinished) and finished.status == "completed", finished
    return finished.run_id


def wait_finished(services: Services, run_id: int, timeout: float = 600) -> TuningRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        start_next(services.settings, services.store)
        run = services.store.get_tuning_run(run_id)
        assert run is not None
        if run.finished:
            return run
        time.sleep(0.5)
    log = Path(run.work_dir, "train.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"tuning run {run_id} still {run.status} after {timeout} s:\n{log}")


@pytest.fixture(scope="session")
def lab_runs(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Iterator[Lab]:
    """The studio the runs were made in; tests read copies of it (`lab`, `scratch_lab`)."""
    home = tmp_path_factory.mktemp("experiments-home")
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    os.symlink(model_home / "models", home / "models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
        services = create_services(settings)
        try:
            policy = services.policy
            check = check_launch(tune_config("reviews-lora"), settings, policy)
            tuning = queue_run(check, settings, services.store, policy)
            start_next(settings, services.store)
            # Both hold out a shot pool, so both evaluate the same rows (agreement needs that).
            three = run_comparison(services, [3], "three-shot")
            sweep = run_comparison(services, [0, 3], "shots sweep")
            done = wait_finished(services, tuning.id)
            assert done.status == "completed", done.error
            yield Lab(services, three, sweep, tuning.id)
        finally:
            services.close()


def copy_lab(original: Lab, home: Path) -> Lab:
    """A copy of `original`'s studio in `home`: its store (with the paths it records moved to the
    copy), adapters and run folders, and Services of its own. The copy shares the converted models
    (the same `models` link), nothing else."""
    source = original.services.settings.home
    shutil.copytree(source, home, symlinks=True, ignore=shutil.ignore_patterns("studio.db*"))
    with sqlite3.connect(source / "studio.db") as src, sqlite3.connect(home / "studio.db") as dst:
        src.backup(dst)
        old, new = str(source), str(home)
        dst.execute(
            "UPDATE tuning_runs SET work_dir = replace(work_dir, ?, ?), "
            "adapter_path = replace(adapter_path, ?, ?)",
            (old, new, old, new),
        )
        dst.execute("UPDATE adapters SET path = replace(path, ?, ?)", (old, new))
    src.close()
    dst.close()
    settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
    return Lab(
        create_services(settings), original.three_shot, original.shots_sweep, original.tuning
    )


@pytest.fixture(scope="module")
def lab(lab_runs: Lab, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """This module's copy of the runs: what a test or fixture here changes stays in this module."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        copy = copy_lab(lab_runs, tmp_path_factory.mktemp("experiments-lab") / "home")
        try:
            yield copy
        finally:
            copy.services.close()


@pytest.fixture
def scratch_lab(lab_runs: Lab, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lab]:
    """A fresh copy of the runs for one test that adds, deletes, re-runs or tags runs."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    copy = copy_lab(lab_runs, tmp_path / "home")
    try:
        yield copy
    finally:
        copy.services.close()
