"""Engine construction for the experiment store.

Owns turning a STUDIO_DB_URL string into a working SQLAlchemy Engine: URL parsing, dialect and
driver checks, SQLite directory creation and per-connection pragmas, and translating each of
those failures into a StoreError that names both the problem and the fix. Passwords are masked
in every message.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.pool import StaticPool

URL_EXAMPLES = "sqlite:////path/studio.db or postgresql+psycopg://user:pass@host/db"

BUSY_TIMEOUT_MS = 10000
# journal_mode is set separately (see _enable_wal).
SQLITE_PRAGMAS = (
    f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
)

# Driver (and pip package) to suggest when a URL names a dialect without a working driver.
_RECOMMENDED_DRIVERS = {
    "postgresql": ("psycopg", "psycopg[binary]"),
    "mysql": ("pymysql", "PyMySQL"),
    "mariadb": ("pymysql", "PyMySQL"),
    "mssql": ("pyodbc", "pyodbc"),
    "oracle": ("oracledb", "oracledb"),
}

# pip distributions whose name differs from the module SQLAlchemy imports.
_DBAPI_PACKAGES = {
    "psycopg": "psycopg[binary]",
    "psycopg2": "psycopg2-binary",
    "MySQLdb": "mysqlclient",
    "pymysql": "PyMySQL",
    "mysql": "mysql-connector-python",
}

IMMEDIATE_OPTION = "studio_begin_immediate"

_RAW_PASSWORD = re.compile(r"(://[^:/@]*:).*@")


class StoreError(Exception):
    """The experiment store could not be opened, migrated, read or written."""


def mask_raw_url(raw: str) -> str:
    """Hide the password of a URL string that SQLAlchemy could not parse."""
    return _RAW_PASSWORD.sub(r"\1***@", raw)


def masked(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def parse_url(raw: str) -> URL:
    try:
        return make_url(raw)
    except (ArgumentError, ValueError, TypeError):
        # No chaining: the original message may echo the raw URL, password included.
        raise StoreError(
            f"STUDIO_DB_URL {mask_raw_url(str(raw))!r} is not a valid SQLAlchemy URL; "
            f"expected e.g. {URL_EXAMPLES}"
        ) from None


def make_engine(url: str) -> Engine:
    """Build an engine for `url` and check that it connects; raise StoreError naming the fix."""
    parsed = parse_url(url)
    _check_dialect(parsed)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    else:
        engine = _create(parsed, pool_pre_ping=True)
    check_connection(engine)
    return engine


def writer_engine(engine: Engine) -> Engine:
    """The same engine (and pool), but SQLite transactions take the write lock at BEGIN."""
    return engine.execution_options(**{IMMEDIATE_OPTION: True})


def check_connection(engine: Engine) -> None:
    try:
        with engine.connect():
            pass
    except DBAPIError as exc:
        engine.dispose()
        if engine.dialect.name == "sqlite":
            fix = "check that the path is a writable SQLite database file (or a new one)"
        else:
            fix = "check that the server is running and reachable and the credentials are right"
        raise StoreError(
            f"cannot open the database {masked(engine.url)} ({exc.orig}); {fix}, "
            "or set STUDIO_DB_URL to another database"
        ) from exc


def _check_dialect(url: URL) -> None:
    try:
        url.get_dialect()
    except NoSuchModuleError:
        raise StoreError(_unknown_dialect_message(url)) from None


def _unknown_dialect_message(url: URL) -> str:
    backend, _, driver = url.drivername.partition("+")
    if backend in _RECOMMENDED_DRIVERS:
        module, package = _RECOMMENDED_DRIVERS[backend]
        return (
            f"STUDIO_DB_URL {masked(url)} names driver {driver!r} for {backend}, which SQLAlchemy "
            f"does not know; use {backend}+{module}://... and install the driver with "
            f"`pip install {package}`"
        )
    return (
        f"STUDIO_DB_URL {masked(url)} names database dialect {url.drivername!r}, which SQLAlchemy "
        f"cannot load; `pip install` the SQLAlchemy dialect package that provides it, or use "
        f"e.g. {URL_EXAMPLES}"
    )


def _create(url: URL, **kwargs: Any) -> Engine:
    try:
        return create_engine(url, **kwargs)
    except ImportError as exc:
        dialect = url.get_dialect()
        module = exc.name or dialect.driver
        package = _DBAPI_PACKAGES.get(module, module)
        raise StoreError(
            f"STUDIO_DB_URL uses {dialect.name}+{dialect.driver}, but its DB driver {module!r} "
            f"is not installed; install it with `pip install {package}`"
        ) from exc


def _sqlite_engine(url: URL) -> Engine:
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        # One shared connection, or each pooled connection would see its own empty database.
        # Only for single-threaded use such as tests.
        engine = _create(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        if not url.query.get("uri"):
            _ensure_parent(Path(database))
        engine = _create(url)
    _install_sqlite_hooks(engine, engine.dialect.loaded_dbapi.OperationalError)
    return engine


def _ensure_parent(database: Path) -> None:
    parent = database.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the directory {parent} for the SQLite database "
            f"({exc.strerror or exc}); set STUDIO_DB_URL to a path in a writable directory"
        ) from exc


def _enable_wal(cursor: Any, locked_error: type[Exception]) -> None:
    # Switching a fresh file to WAL fails at once with "database is locked" while another
    # connection switches it; SQLite does not apply busy_timeout here, so retry by hand.
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            return
        except locked_error as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _install_sqlite_hooks(engine: Engine, locked_error: type[Exception]) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take BEGIN away from pysqlite (emitted in _on_begin instead): its legacy mode runs
        # SELECTs outside transactions and breaks savepoints.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
            _enable_wal(cursor, locked_error)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Writers lock at BEGIN: upgrading a read transaction to a write one can fail with
        # SQLITE_BUSY straight away, which busy_timeout does not retry.
        immediate = connection.get_execution_options().get(IMMEDIATE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")
