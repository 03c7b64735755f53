"""The rule for outside needs, proven in a real pytest subprocess: with the shared data, the
browser, a package or a command missing, a test skips with its reason on a developer's machine and
fails loudly under CI=true — so CI can never pass by skipping.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests import needs

ROOT = Path(__file__).resolve().parents[1]

TINY_MODULE = """
from tests import needs

def test_shared_data():
    assert needs.shared_data("sst2", "validation.tsv").is_file()

def test_chromium():
    needs.chromium()

def test_package():
    needs.package("studio_no_such_package", "proving the rule")

def test_command():
    needs.command("studio-no-such-command", "proving the rule")

def test_needs_nothing():
    assert True
"""
NEEDING = ("test_shared_data", "test_chromium", "test_package", "test_command")


def run_pytest(
    target: str, tmp_path: Path, *, ci: bool, config: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """pytest on `target` with the shared data and chromium pointed at nothing."""
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "PYTEST_ADDOPTS")}
    env |= {
        "PYTHONPATH": str(ROOT),
        "STUDIO_TEST_SHARED_DATA": str(tmp_path / "no-shared-data"),
        "STUDIO_TEST_CHROMIUM": str(tmp_path / "no-chromium"),
    }
    if ci:
        env["CI"] = "true"
    command = [sys.executable, "-m", "pytest", target, "-rA", "-p", "no:cacheprovider", "-q"]
    if config is not None:
        command += ["-c", str(config), "--rootdir", str(config.parent)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[str, Path]:
    """The probe module in a temporary folder, with its own (empty) pytest configuration."""
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "test_probe.py").write_text(TINY_MODULE, encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    return str(folder / "test_probe.py"), folder / "pytest.ini"


def test_missing_needs_skip_with_their_reason_on_a_developer_machine(
    tiny: tuple[str, Path], tmp_path: Path
) -> None:
    result = run_pytest(tiny[0], tmp_path, ci=False, config=tiny[1])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 4 skipped" in result.stdout, result.stdout
    for reason in (
        "public test data missing",
        "Debian chromium is not installed",
        "'studio_no_such_package' is not installed",
        "'studio-no-such-command'",
    ):
        assert reason in result.stdout, f"the skip does not say {reason!r}:\n{result.stdout}"


def test_missing_needs_fail_loudly_under_ci(tiny: tuple[str, Path], tmp_path: Path) -> None:
    result = run_pytest(tiny[0], tmp_path, ci=True, config=tiny[1])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "4 failed, 1 passed" in result.stdout, result.stdout
    failed = set(re.findall(r"^FAILED \S*::(test_\w+)", result.stdout, re.MULTILINE))
    assert failed == set(NEEDING), result.stdout
    assert "SKIPPED" not in result.stdout
    assert "CI=true, so this is a failure, not a skip" in result.stdout


def test_a_real_suite_module_fails_under_ci_without_the_shared_data(tmp_path: Path) -> None:
    """Not only the probe: a real test of the suite, its shared data hidden."""
    target = "tests/templates/test_fewshot.py::test_sst2_pool_against_validation"
    local = run_pytest(target, tmp_path, ci=False)
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout
    ci = run_pytest(target, tmp_path, ci=True)
    assert ci.returncode == 1 and "1 failed" in ci.stdout, ci.stdout
    assert str(tmp_path / "no-shared-data") in ci.stdout


def test_the_default_shared_data_is_the_sibling_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STUDIO_TEST_SHARED_DATA", raising=False)
    assert needs.shared_root() == ROOT.parent / "shared" / "data"


ADHOC_SKIPS = """
import pytest

def test_adhoc_skip():
    pytest.skip("some condition the test chose not to meet")

@pytest.mark.gpu
def test_gpu_skip():
    pytest.skip("needs a CUDA GPU")
"""


def test_any_other_skip_fails_under_ci_but_a_gpu_test_may_skip(tmp_path: Path) -> None:
    """The conftest hook: a skip that did not come through tests/needs.py fails in CI too."""
    folder = tmp_path / "probe"
    folder.mkdir()
    (folder / "test_skips.py").write_text(ADHOC_SKIPS, encoding="utf-8")
    (folder / "conftest.py").write_text(
        "from tests.conftest import pytest_runtest_makereport  # noqa: F401\n", encoding="utf-8"
    )
    config = folder / "pytest.ini"
    config.write_text("[pytest]\nmarkers =\n    gpu: needs a CUDA GPU\n", encoding="utf-8")
    local = run_pytest(str(folder / "test_skips.py"), tmp_path, ci=False, config=config)
    assert "2 skipped" in local.stdout and local.returncode == 0, local.stdout
    ci = run_pytest(str(folder / "test_skips.py"), tmp_path, ci=True, config=config)
    assert "1 failed, 1 skipped" in ci.stdout, ci.stdout
    assert "FAILED" in ci.stdout and "test_adhoc_skip" in ci.stdout
    assert "skipped under CI=true, which counts as a failure" in ci.stdout
