"""What a test needs from outside itself, asked for in one way.

Shared public data, Debian chromium, PostgreSQL, optional packages and root-only faults are all
installed by the README's test command (`make test`). On a developer's machine a missing one
skips the test with the reason and the fix; under CI=true it fails instead, because CI runs the
same command and a skip there would hide a feature that was never tested.

    from tests import needs
    sst2 = needs.shared_data("sst2", "validation.tsv")
    openai = needs.package("openai", "transformers serve needs it")

`STUDIO_TEST_SHARED_DATA` points the shared data somewhere else and `STUDIO_TEST_CHROMIUM` the
browser (tests/test_needs.py proves the rule by pointing them at nothing).
"""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = ROOT.parent / "shared" / "data"
CHROMIUM = os.environ.get("STUDIO_TEST_CHROMIUM", "/usr/bin/chromium")
SETUP_HINT = "`make test` (scripts/bootstrap.sh dev) installs it"


def in_ci() -> bool:
    """True when CI=true (or 1/yes): the environment where nothing may be skipped."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def missing(reason: str) -> NoReturn:
    """Skip with `reason` on a developer's machine; fail with it under CI=true."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true, so this is a failure, not a skip)", pytrace=False)
    pytest.skip(reason)


def shared_root() -> Path:
    """The folder of public test data (../shared/data unless STUDIO_TEST_SHARED_DATA says)."""
    kept = os.environ.get("STUDIO_TEST_SHARED_DATA")
    return Path(kept) if kept else DEFAULT_SHARED_DATA


def shared_data(*parts: str) -> Path:
    """A file or folder under the shared public data; missing means skip (fail in CI)."""
    path = shared_root().joinpath(*parts)
    if not path.exists():
        missing(f"public test data missing: {path} (see ../shared/data/README.md)")
    return path


def chromium() -> str:
    """The Debian chromium binary Playwright drives (its own download does not work offline)."""
    if not Path(CHROMIUM).exists():
        missing(f"Debian chromium is not installed at {CHROMIUM}; {SETUP_HINT}")
    return CHROMIUM


def package(name: str, why: str) -> ModuleType:
    """Import an optional package a test needs; `why` says what for."""
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"package {name!r} is not installed ({why}); {SETUP_HINT} via the dev extras")


def command(name: str, why: str) -> str:
    """An executable on PATH a test needs."""
    found = shutil.which(name)
    if found is None:
        missing(f"command {name!r} is not on PATH ({why}); {SETUP_HINT}")
    return found


def root(why: str) -> None:
    """The test needs to run as root (e.g. to mount a tiny full filesystem)."""
    if os.geteuid() != 0:
        missing(f"needs root: {why}")
