"""A real studio server (`python app.py` in a subprocess) for API and browser tests."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT


@dataclass
class Server:
    url: str
    home: Path
    log: Path
    seconds_to_first_page: float


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
    after. With `model_home`, the converted test models are shared instead of converted again."""
    home.mkdir(parents=True, exist_ok=True)
    if model_home is not None and not (home / "models").exists():
        (model_home / "models").mkdir(parents=True, exist_ok=True)
        os.symlink(model_home / "models", home / "models")
    port = _free_port()
    environment = {
        **os.environ,
        "STUDIO_HOME": str(home),
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
        yield Server(url, home, log, time.monotonic() - started)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def studio_server(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Iterator[Server]:
    with run_studio(tmp_path_factory.mktemp("server-home"), model_home) as server:
        yield server


CHROMIUM = "/usr/bin/chromium"
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
    if not Path(CHROMIUM).exists():
        pytest.skip(
            "Debian chromium is not installed (make test installs it: apt-get install chromium)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
