"""Engine setup: SQLite pragmas, directory creation and StoreErrors that name the fix."""

from __future__ import annotations

import importlib.util
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from studio.store import Store, StoreError, open_store
from studio.store.engine import make_engine, mask_raw_url, masked
from tests import needs


def test_sqlite_connections_get_the_pragmas(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'studio.db'}")
    try:
        with engine.connect() as connection:

            def pragma(name: str) -> object:
                return connection.execute(text(f"PRAGMA {name}")).scalar()

            assert pragma("journal_mode") == "wal"
            assert pragma("foreign_keys") == 1
            assert pragma("busy_timeout") == 10000
            assert pragma("synchronous") == 1  # NORMAL
    finally:
        engine.dispose()


def test_store_file_is_in_wal_mode_and_parent_is_created(tmp_path: Path) -> None:
    path = tmp_path / "deeply" / "nested" / "studio.db"
    with open_store(f"sqlite:///{path}") as store:
        assert store.url == f"sqlite:///{path}"
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_in_memory_database_works_for_single_threaded_use(make_record) -> None:
    with Store("sqlite://") as store:
        exchange_id = store.log_exchange(make_record())
        assert store.get_exchange(exchange_id) is not None


@pytest.mark.parametrize("url", ["xyz", "", "postgresql://u:secret@host:notaport/db"])
def test_malformed_url_names_the_setting_and_an_example(url: str) -> None:
    with pytest.raises(StoreError) as caught:
        Store(url)
    message = str(caught.value)
    assert "STUDIO_DB_URL" in message
    assert "is not a valid SQLAlchemy URL" in message
    assert "sqlite:////path/studio.db" in message
    assert "secret" not in message


def test_unknown_driver_names_the_package_to_install() -> None:
    with pytest.raises(StoreError) as caught:
        Store("postgresql+nosuchdriver://u:secret@localhost/db")
    message = str(caught.value)
    assert "nosuchdriver" in message
    assert "pip install psycopg[binary]" in message
    assert "secret" not in message


def test_unknown_dialect_says_to_install_a_dialect_package() -> None:
    with pytest.raises(StoreError) as caught:
        Store("nosuchdb://x")
    message = str(caught.value)
    assert "'nosuchdb'" in message
    assert "pip install" in message


# Drivers the studio names but the dev environment never installs (checked below), so the
# "missing driver" path always runs.
ABSENT_DRIVERS = [
    ("mysql+pymysql", "pymysql", "PyMySQL"),
    ("postgresql+pg8000", "pg8000", "pg8000"),
    ("mysql+mysqldb", "MySQLdb", "mysqlclient"),
]


@pytest.mark.parametrize(("drivername", "module", "package"), ABSENT_DRIVERS)
def test_missing_db_driver_names_the_pip_package(
    drivername: str, module: str, package: str
) -> None:
    assert importlib.util.find_spec(module) is None, f"{module} is installed; pick another driver"
    with pytest.raises(StoreError) as caught:
        Store(f"{drivername}://u:secret@localhost/db")
    message = str(caught.value)
    assert f"pip install {package}" in message
    assert drivername in message
    assert "secret" not in message


def test_sqlite_path_under_a_regular_file_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("plain file")
    with pytest.raises(StoreError, match="cannot create the directory") as caught:
        Store(f"sqlite:///{blocker / 'sub' / 'studio.db'}")
    assert "STUDIO_DB_URL" in str(caught.value)


def test_sqlite_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the database") as caught:
        Store(f"sqlite:///{tmp_path}")
    assert "STUDIO_DB_URL" in str(caught.value)


def test_file_that_is_not_a_database_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "studio.db"
    path.write_bytes(b"this is not an SQLite database, just some bytes" * 100)
    with pytest.raises(StoreError, match="cannot open the database"):
        Store(f"sqlite:///{path}")


def test_unreachable_server_masks_the_password() -> None:
    needs.package("psycopg", "the PostgreSQL driver")
    with pytest.raises(StoreError) as caught:
        Store("postgresql+psycopg://u:secret@127.0.0.1:1/db?connect_timeout=2")
    message = str(caught.value)
    assert "cannot open the database" in message
    assert "u:***@127.0.0.1:1" in message
    assert "secret" not in message


def test_password_masking_helpers() -> None:
    assert "secret" not in masked(make_url("postgresql+psycopg://u:secret@h/db"))
    assert mask_raw_url("postgresql://u:se@cret@h:x/db") == "postgresql://u:***@h:x/db"
    assert mask_raw_url("sqlite:////tmp/a.db") == "sqlite:////tmp/a.db"
