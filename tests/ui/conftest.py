"""A real studio server (`python app.py` in a subprocess) for API and browser tests, and the
rules every UI test keeps: a served studio writes only under its temporary home (its own store,
adapters folder and copy of the template library), screenshots go to test-artifacts/ unless
STUDIO_TEST_SCREENSHOTS names another folder (`make screenshots`: docs/screenshots), and the
checkout's adapters/, studio/prompts/ and docs/screenshots/ are checked unchanged at the end."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from studio.settings import PROMPTS_DIR
from tests import needs
from tests.conftest import ARTIFACTS, ROOT
from tests.snapshots import Snapshot, changes, file_digests

# The checkout's folders a UI test could write into by mistake; none may change during the tests.
GUARDED = ("adapters", "studio/prompts", "docs/screenshots")
SCREENSHOTS_VARIABLE = "STUDIO_TEST_SCREENSHOTS"


@dataclass
class Server:
    url: str
    home: Path
    log: Path
    seconds_to_first_page: float
    adapters: Path  # where its tuning runs write adapters (under `home` unless given)
    library: Path  # its template library (a copy of the shipped one in `home` unless given)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for_page(url: str, proc: subprocess.Popen, log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"studio exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"studio did not serve {url} in {timeout} s:\n{log.read_text()[-3000:]}")


@contextlib.contextmanager
def run_studio(
    home: Path, model_home: Path | None = None, command: list[str] | None = None, **env: str
) -> Iterator[Server]:
    """Serve the studio (`python app.py` unless `command` says otherwise) on a free loopback
    port with its data in `home` and `env` added; yield once its first page answers, stop it
    after. With `model_home`, the converted test models are shared instead of converted again.

    Adapters go to `home`/adapters and templates are saved into a copy of the shipped library in
    `home`/prompts, unless `env` names STUDIO_ADAPTERS_DIR / STUDIO_PROMPTS_DIR: a served studio
    never writes into the checkout (the defaults there are its adapters/ and studio/prompts/)."""
    home.mkdir(parents=True, exist_ok=True)
    if "STUDIO_PROMPTS_DIR" not in env and not (home / "prompts").exists():
        shutil.copytree(PROMPTS_DIR, home / "prompts")
    if model_home is not None and not (home / "models").exists():
        (model_home / "models").mkdir(parents=True, exist_ok=True)
        os.symlink(model_home / "models", home / "models")
    port = _free_port()
    environment = {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_ADAPTERS_DIR": str(home / "adapters"),
        "STUDIO_PROMPTS_DIR": str(home / "prompts"),
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "HF_HUB_OFFLINE": "1",
        "STUDIO_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
        **env,
    }
    environment.pop("STUDIO_DB_URL", None)
    log = home / "server.log"
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen(
            command or [sys.executable, "app.py"],
            cwd=ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_page(url, proc, log)
        adapters, library = environment["STUDIO_ADAPTERS_DIR"], environment["STUDIO_PROMPTS_DIR"]
        yield Server(url, home, log, time.monotonic() - started, Path(adapters), Path(library))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def studio_server(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Iterator[Server]:
    """A studio of this module's own: what its tests store (chats, runs, templates) is not what
    another module's tests find."""
    with run_studio(tmp_path_factory.mktemp("server-home"), model_home) as server:
        yield server


def screenshot_folder() -> Path:
    """Where browser tests save the screenshots the docs show: test-artifacts/ (git-ignored), or
    the folder STUDIO_TEST_SCREENSHOTS names, relative to the checkout (`make screenshots`)."""
    chosen = os.environ.get(SCREENSHOTS_VARIABLE, "").strip()
    return ROOT / chosen if chosen else ARTIFACTS


@pytest.fixture
def screenshot() -> Callable[[Any, str], Path]:
    """`screenshot(page, "compare.png")`: the whole page, saved in screenshot_folder()."""

    def take(page: Any, name: str) -> Path:
        folder = screenshot_folder()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def checkout_snapshot(folders: list[Path]) -> Snapshot:
    """Every file under `folders` by content (tests/snapshots.py), one part per folder."""
    return {str(folder.relative_to(ROOT)): file_digests(folder) for folder in folders}


@pytest.fixture(scope="package", autouse=True)
def checkout_unchanged() -> Iterator[None]:
    """Fail if the UI tests changed the checkout's adapters/, studio/prompts/ or
    docs/screenshots/ (except the folder STUDIO_TEST_SCREENSHOTS asked screenshots to go to).
    Package scope: checked once, after the last test under tests/ui/."""
    asked = screenshot_folder().resolve()
    folders = [ROOT / name for name in GUARDED if (ROOT / name).resolve() != asked]
    before = checkout_snapshot(folders)
    yield
    changed = changes(before, checkout_snapshot(folders))
    if changed:
        pytest.fail(
            "the UI tests changed the checkout (a test must write under its tmp_path, a served "
            "studio under its home, screenshots under test-artifacts/):\n  " + "\n  ".join(changed),
            pytrace=False,
        )


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    """Debian chromium driven by Playwright (its own browser download does not work offline)."""
    chromium = needs.chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
