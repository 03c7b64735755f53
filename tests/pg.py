"""A throwaway PostgreSQL server for the tests: one cluster per session, one database per test.

The Debian `postgresql` package (installed by `scripts/bootstrap.sh dev`) puts initdb and pg_ctl
in /usr/lib/postgresql/<version>/bin. The cluster lives in a fresh directory under /tmp, listens
only on a Unix socket there (no TCP), trusts its one user `studio`, and runs with fsync off: it
exists to be thrown away. Run as root (as in CI containers), the server runs as the `postgres`
system user, since initdb and pg_ctl refuse root.

When PostgreSQL or psycopg is missing, `require_postgres` skips the test with the reason; under
CI=true it fails instead, so CI cannot pass without really testing PostgreSQL.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.util
import itertools
import os
import pwd
import shlex
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from tests import needs

USER = "studio"
SERVER_OPTIONS = (
    "-c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off "
    "-c max_connections=200"
)
INITDB_OPTIONS = ("--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
INSTALL_HINT = (
    "install the Debian postgresql package and psycopg[binary] (`scripts/bootstrap.sh dev` "
    "does both)"
)
# Root drops to the first of these accounts that exists.
SERVER_ACCOUNTS = ("postgres", "nobody")


class PostgresUnavailable(Exception):
    """No throwaway PostgreSQL can be started here; the message says why."""


def unavailable(reason: str) -> NoReturn:
    """Skip the test because PostgreSQL cannot be used; fail instead under CI=true."""
    needs.missing(f"PostgreSQL tests cannot run: {reason}")


def find_bindir() -> Path | None:
    """The newest /usr/lib/postgresql/<version>/bin holding initdb and pg_ctl, else PATH's."""

    def version(path: Path) -> tuple[int, ...]:
        name = path.parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    found = [
        initdb.parent
        for initdb in Path("/usr/lib/postgresql").glob("*/bin/initdb")
        if (initdb.parent / "pg_ctl").exists()
    ]
    if found:
        return max(found, key=version)
    on_path = shutil.which("initdb")
    if on_path and shutil.which("pg_ctl"):
        return Path(on_path).resolve().parent
    return None


@dataclass
class Cluster:
    """A running throwaway PostgreSQL cluster; `create_database` hands out fresh databases."""

    root: Path
    port: int
    bindir: Path
    run_as: str | None
    _admin: Any = field(default=None, repr=False)
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{USER}@/{database}?host={self.socket_dir}&port={self.port}"

    def connect(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(
            host=str(self.socket_dir),
            port=self.port,
            user=USER,
            dbname=database,
            autocommit=True,
            connect_timeout=10,
        )

    def create_database(self) -> str:
        """Create an empty database `t_<n>` and return its SQLAlchemy URL."""
        with self._lock:
            name = f"t_{next(self._names)}"
            if self._admin is None or self._admin.closed:
                self._admin = self.connect()
            # FILE_COPY: with fsync off, copying template1's files beats WAL-logging them.
            self._admin.execute(f'CREATE DATABASE "{name}" STRATEGY = FILE_COPY')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a database made by create_database, closing any connection a test left open."""
        name = url.rsplit("/", 1)[1].split("?", 1)[0]
        with self._lock:
            if self._admin is None or self._admin.closed:
                self._admin = self.connect()
            self._admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    @contextlib.contextmanager
    def database(self) -> Iterator[str]:
        url = self.create_database()
        try:
            yield url
        finally:
            with contextlib.suppress(Exception):
                self.drop_database(url)

    def stop(self) -> None:
        if self._admin is not None:
            with contextlib.suppress(Exception):
                self._admin.close()
            self._admin = None
        if (self.data / "postmaster.pid").exists():
            with contextlib.suppress(Exception):
                _run(self, "pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _server_account() -> str | None:
    """The account the server runs as: None for the current user, a system user under root."""
    if os.geteuid() != 0:
        return None
    for name in SERVER_ACCOUNTS:
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresUnavailable(
        "running as root, and initdb refuses root, but there is no `postgres` (or `nobody`) "
        "user to run the server as; install the Debian postgresql package, which creates it"
    )


def _as(run_as: str | None, command: list[str]) -> list[str]:
    if run_as is None:
        return command
    if shutil.which("runuser"):
        return ["runuser", "-u", run_as, "--", *command]
    return ["su", "-s", "/bin/sh", run_as, "-c", shlex.join(command)]


def _run(cluster: Cluster, tool: str, *args: str) -> None:
    command = _as(cluster.run_as, [str(cluster.bindir / tool), *args])
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cluster.root,
        env={**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"},
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()
        raise PostgresUnavailable(f"`{shlex.join(command)}` failed ({done.returncode}): {output}")


def _free_port() -> int:
    # The server listens on no TCP port; the number only names its socket file.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _watchdog(cluster: Cluster) -> None:
    """If this process dies without cleaning up (SIGKILL), stop the server and delete its files."""
    script = (
        f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 2; done; "
        f"pid=$(head -n 1 {shlex.quote(str(cluster.data / 'postmaster.pid'))} 2>/dev/null) && "
        'kill -QUIT "$pid" 2>/dev/null; sleep 1; '
        f"rm -rf {shlex.quote(str(cluster.root))}"
    )
    subprocess.Popen(
        ["sh", "-c", script],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def start_cluster() -> Cluster:
    """initdb and start a new cluster; raise PostgresUnavailable saying why it cannot."""
    if importlib.util.find_spec("psycopg") is None:
        raise PostgresUnavailable(f"the psycopg driver is not installed; {INSTALL_HINT}")
    bindir = find_bindir()
    if bindir is None:
        raise PostgresUnavailable(
            f"initdb/pg_ctl not found in /usr/lib/postgresql/*/bin or on PATH; {INSTALL_HINT}"
        )
    run_as = _server_account()
    # Under /tmp rather than $TMPDIR: the socket path must stay short (about 100 bytes at most)
    # and, when the server runs as another user, reachable by that user.
    base = "/tmp" if Path("/tmp").is_dir() else None
    root = Path(tempfile.mkdtemp(prefix="studio-pg-", dir=base))
    if run_as is not None:
        account = pwd.getpwnam(run_as)
        os.chown(root, account.pw_uid, account.pw_gid)
    root.chmod(0o755)
    cluster = Cluster(root=root, port=_free_port(), bindir=bindir, run_as=run_as)
    try:
        _run(cluster, "initdb", "-D", str(cluster.data), "-U", USER, *INITDB_OPTIONS)
        _watchdog(cluster)
        options = f"-k {cluster.socket_dir} -p {cluster.port} {SERVER_OPTIONS}"
        log = str(cluster.log)
        _run(cluster, "pg_ctl", "-D", str(cluster.data), "-o", options, "-l", log, "-w", "start")
        cluster.create_database()  # proves the socket, the user and psycopg all work
    except Exception as exc:
        tail = cluster.log.read_text(errors="replace")[-2000:] if cluster.log.exists() else ""
        cluster.stop()
        reason = str(exc)
        if not isinstance(exc, PostgresUnavailable):
            reason = f"{type(exc).__name__}: {reason}"
        if tail:
            reason = f"{reason}\nserver log:\n{tail}"
        raise PostgresUnavailable(f"could not start a throwaway PostgreSQL: {reason}") from exc
    return cluster


_started: Cluster | None = None
_failure: str | None = None


def session_cluster() -> Cluster:
    """The session's cluster, started on first use and stopped when the test process exits.

    Raises PostgresUnavailable (remembered, so later tests do not retry a slow failure).
    """
    global _started, _failure
    if _started is None:
        if _failure is not None:
            raise PostgresUnavailable(_failure)
        try:
            _started = start_cluster()
        except PostgresUnavailable as exc:
            _failure = str(exc)
            raise
        atexit.register(_started.stop)
    return _started


@contextlib.contextmanager
def require_postgres() -> Iterator[str]:
    """A fresh, empty database URL for one test; skips (fails under CI=true) when impossible."""
    try:
        cluster = session_cluster()
    except PostgresUnavailable as exc:
        unavailable(str(exc))
    with cluster.database() as url:
        yield url
