"""Shared fixtures: an isolated STUDIO_HOME per test session, the real bundled model, the store."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from studio.runtime.openmp import use_passive_waits
from tests.needs import in_ci, shared_root

# The test process hosts the studio's engines (and servers, workers beside it) as `python app.py`
# does: idle OpenMP threads sleep instead of spinning against the processes next to them.
use_passive_waits()

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = shared_root()  # ../shared/data, or STUDIO_TEST_SHARED_DATA (tests/needs.py)
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def model_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A STUDIO_HOME reused by every test that loads the real model, so GGUF conversion runs once.

    STUDIO_TEST_MODEL_HOME keeps it across runs (the Makefile sets it under .venv).
    """
    kept = os.environ.get("STUDIO_TEST_MODEL_HOME")
    if kept:
        path = Path(kept)
        path.mkdir(parents=True, exist_ok=True)
        return path
    return tmp_path_factory.mktemp("studio-home")


@pytest.fixture
def fresh_home(tmp_path: Path, model_home: Path) -> Path:
    """A new STUDIO_HOME (empty store) that shares the converted-model cache of model_home."""
    home = tmp_path / "home"
    home.mkdir()
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    os.symlink(model_home / "models", home / "models")
    return home


@pytest.fixture
def settings(fresh_home: Path, monkeypatch: pytest.MonkeyPatch):
    from studio.settings import load_settings

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    return load_settings(home=fresh_home, offline=True, adapters_dir=fresh_home / "adapters")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def copy_artifact(src: Path, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    dst = ARTIFACTS / name
    shutil.copy(src, dst)
    return dst


# Markers whose tests may skip under CI=true: CI has no CUDA GPU.
CI_MAY_SKIP = ("gpu",)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Under CI=true any skip (outside CI_MAY_SKIP) is a failure: a skip in CI hides an untested
    feature. tests/needs.py already fails for missing outside needs; this catches every other."""
    outcome = yield
    report = outcome.get_result()
    if not (report.skipped and in_ci()) or hasattr(report, "wasxfail"):
        return
    if any(item.get_closest_marker(name) for name in CI_MAY_SKIP):
        return
    reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
    report.outcome = "failed"
    report.longrepr = f"skipped under CI=true, which counts as a failure: {reason}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `gpu`-marked tests without a CUDA GPU: correct under CI too, which has none."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_tests:
        return
    import torch  # only when a gpu test was collected: torch is slow to import

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in gpu_tests:
        item.add_marker(skip)
