"""Schema migrations for the experiment store.

Owns running the bundled Alembic scripts (studio/store/migrations) against an engine. Alembic is
configured entirely in code, with no alembic.ini, and is never allowed to configure logging.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Column, Connection, Engine, MetaData, PrimaryKeyConstraint, String, Table
from sqlalchemy import inspect as inspect_schema
from sqlalchemy.exc import SQLAlchemyError

from studio.store.engine import StoreError, masked, writer_engine
from studio.store.schema import Base

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
# Alembic's own version table holds 32 characters; revision ids here are longer
# ("0002_prompts_datasets_comparisons"), which SQLite never checks but PostgreSQL refuses.
VERSION_LENGTH = 64


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the bundled scripts, optionally bound to an open connection."""
    config = Config()
    # Config values go through configparser interpolation, so a literal % must be doubled.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise StoreError(f"no migrations found in {MIGRATIONS_DIR}; reinstall Instruct Studio")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None before the first migration."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine) -> None:
    """Bring the database to the newest revision; a no-op when it is already there.

    A new database (no revision, none of the studio's tables) is created from the ORM models and
    stamped at the head revision instead of replaying every migration: faster on a first start,
    and the same schema (tests/store/test_store_new_database.py compares the two).
    """
    try:
        with migration_connection(engine) as connection:
            config = alembic_config(connection)
            if _is_new(connection):
                Base.metadata.create_all(connection, checkfirst=False)
                command.stamp(config, "head")
            else:
                command.upgrade(config, "head")
    except CommandError as exc:
        raise StoreError(_unknown_revision_message(engine, exc)) from exc
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise StoreError(
            f"could not migrate the database {masked(engine.url)} to revision {head_revision()} "
            f"({reason}); make sure the database is writable and no other process holds a long "
            "write lock, then start again"
        ) from exc


def _is_new(connection: Connection) -> bool:
    if MigrationContext.configure(connection).get_current_revision() is not None:
        return False
    existing = set(inspect_schema(connection).get_table_names())
    return existing.isdisjoint(Base.metadata.tables)


def ensure_version_table(connection: Connection) -> None:
    """Create Alembic's version table with room for our revision ids, or widen an old one."""
    table = Table(
        VERSION_TABLE,
        MetaData(),
        Column("version_num", String(VERSION_LENGTH), nullable=False),
        PrimaryKeyConstraint("version_num", name=f"{VERSION_TABLE}_pkc"),
    )
    if not inspect_schema(connection).has_table(VERSION_TABLE):
        table.create(connection)
        return
    if connection.dialect.name == "sqlite":
        return
    column = next(c for c in inspect_schema(connection).get_columns(VERSION_TABLE))
    length = getattr(column["type"], "length", None)
    if length is not None and length < VERSION_LENGTH:
        Operations(MigrationContext.configure(connection)).alter_column(
            VERSION_TABLE,
            "version_num",
            type_=String(VERSION_LENGTH),
            existing_type=column["type"],
            existing_nullable=False,
        )


@contextmanager
def migration_connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside one transaction that holds the write lock for the whole upgrade.

    On SQLite, foreign keys are switched off meanwhile: batch migrations rebuild tables by
    copy-and-drop, which would trip ON DELETE RESTRICT; integrity is checked before committing.
    """
    with writer_engine(engine).connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _set_sqlite_foreign_keys(connection, enabled=False)
        try:
            with connection.begin():
                yield connection
                if sqlite:
                    _check_sqlite_foreign_keys(connection)
        finally:
            if sqlite:
                _set_sqlite_foreign_keys(connection, enabled=True)


def _set_sqlite_foreign_keys(connection: Connection, *, enabled: bool) -> None:
    # Through the driver: SQLAlchemy would BEGIN first, and SQLite ignores this pragma
    # inside a transaction.
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(f"PRAGMA foreign_keys={'ON' if enabled else 'OFF'}")


def _check_sqlite_foreign_keys(connection: Connection) -> None:
    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        tables = sorted({row[0] for row in broken})
        raise StoreError(
            f"a migration left rows with dangling foreign keys in {', '.join(tables)}; nothing "
            "was changed. Report this as a bug in the migration"
        )


def _unknown_revision_message(engine: Engine, exc: CommandError) -> str:
    try:
        found = current_revision(engine)
    except SQLAlchemyError:
        found = None
    return (
        f"cannot migrate the database {masked(engine.url)} ({exc}); it is at revision {found!r} "
        f"but this version of Instruct Studio knows revisions up to {head_revision()!r}. Upgrade "
        "Instruct Studio, or set STUDIO_DB_URL to another database"
    )
