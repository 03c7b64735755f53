"""What the hardening suite shares: a content snapshot of everything a studio can write (so a
refused input can be shown to have changed no byte and no row), the `studio` command in a
subprocess, a real `python app.py` server that can be killed and started again on the same
STUDIO_HOME, and waits on a condition (never a fixed sleep) that fail naming what they wait for."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import needs
from tests.conftest import ROOT, SHARED_DATA
from tests.snapshots import SQLITE_FILES, Snapshot, file_digests, table_digests
from tests.ui.conftest import _free_port, _wait_for_page

STUDIO = str(Path(sys.executable).with_name("studio"))
PROMPTS = ROOT / "studio" / "prompts"
SST2 = SHARED_DATA / "sst2"
QUIET_ENV = {
    "HF_HUB_OFFLINE": "1",
    "STUDIO_OFFLINE": "1",
    "GRADIO_ANALYTICS_ENABLED": "False",
    "TOKENIZERS_PARALLELISM": "false",
}


def table_counts(db: Path) -> dict[str, int]:
    """Rows per table of a SQLite store ({} when there is no database file yet)."""
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        names = [
            row[0]
            for row in conn.execute(
                "select name from sqlite_master where type = 'table' and name not like 'sqlite_%'"
            )
        ]
        return {
            name: conn.execute(f'select count(*) from "{name}"').fetchone()[0] for name in names
        }


def files_under(folder: Path) -> dict[str, int]:
    """Every file below `folder` (hidden temp files included) with its size."""
    if not folder.exists():
        return {}
    return {
        str(path.relative_to(folder)): path.lstat().st_size
        for path in sorted(folder.rglob("*"))
        if not path.is_dir()
    }


@dataclass
class World:
    """A studio's state that hostile input must leave alone: its store, adapters, prompts."""

    home: Path
    adapters: Path
    library: Path  # a prompts library the tests may write to (the project's own is checked too)
    extra: dict[str, Any] = field(default_factory=dict)

    def snapshot(self) -> Snapshot:
        """Every table's rows and every file's bytes, hashed (see tests/snapshots.py)."""
        return {
            "tables": table_digests(self.home / "studio.db"),
            "home": file_digests(self.home, skip=SQLITE_FILES),  # tuning/ and logs included
            "adapters": file_digests(self.adapters),
            "prompts": file_digests(PROMPTS),
            "library": file_digests(self.library),
        }


def studio_cli(
    *args: str, home: Path, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`studio ARGS` as a user runs it, against STUDIO_HOME=home."""
    full_env = {**os.environ, **QUIET_ENV, "STUDIO_HOME": str(home), **(env or {})}
    full_env.pop("STUDIO_DB_URL", None)
    return subprocess.run(
        [STUDIO, *args], capture_output=True, text=True, env=full_env, cwd=ROOT, timeout=timeout
    )


def linked_home(base: Path, model_home: Path) -> Path:
    """A fresh STUDIO_HOME sharing the converted models of the test session."""
    base.mkdir(parents=True, exist_ok=True)
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    if not (base / "models").exists():
        os.symlink(model_home / "models", base / "models")
    return base


@dataclass
class Server:
    """A real `python app.py` on loopback; kill() and start() reuse the same STUDIO_HOME."""

    home: Path
    env: dict[str, str]
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def log(self) -> Path:
        return self.home / f"server-{self.starts}.log"

    def start(self) -> Server:
        self.port = _free_port()
        self.starts += 1
        env = {
            **os.environ,
            **QUIET_ENV,
            "STUDIO_HOME": str(self.home),
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            **self.env,
        }
        env.pop("STUDIO_DB_URL", None)
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "app.py"],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _wait_for_page(self.url, self.proc, self.log)
        return self

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or marked."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)


@pytest.fixture
def make_server(tmp_path: Path, model_home: Path) -> Iterator[Callable[..., Server]]:
    started: list[Server] = []

    def make(env: dict[str, str] | None = None, home: Path | None = None) -> Server:
        server = Server(home or linked_home(tmp_path / "server-home", model_home), env or {})
        started.append(server)
        return server.start()

    yield make
    for server in started:
        server.stop()


def wait_for(what: str, check: Callable[[], Any], timeout: float = 180, every: float = 0.2) -> Any:
    """Poll until check() is truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def needs_sst2() -> None:
    needs.shared_data("sst2", "validation.tsv")


def integrity_ok(db: Path) -> bool:
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute("pragma integrity_check").fetchone()[0] == "ok"
