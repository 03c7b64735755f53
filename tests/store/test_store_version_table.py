"""Alembic's version table: our revision ids are longer than the 32 characters Alembic gives it.

SQLite never checks a VARCHAR length, PostgreSQL does: the store creates the table wide enough
and widens one an older studio (or Alembic itself) created narrow, keeping its revision.
"""

from __future__ import annotations

from alembic import command
from alembic.operations import Operations
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, String, inspect

from studio.store.engine import make_engine
from studio.store.migrate import (
    VERSION_LENGTH,
    VERSION_TABLE,
    alembic_config,
    current_revision,
    head_revision,
    migration_connection,
    upgrade,
)

LONG_REVISION = "0002_prompts_datasets_comparisons"  # 33 characters


def version_length(engine: Engine) -> int | None:
    [column] = inspect(engine).get_columns(VERSION_TABLE)
    return getattr(column["type"], "length", None)


def test_a_new_database_gets_a_wide_version_table(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        assert len(LONG_REVISION) > 32 and len(head_revision()) <= VERSION_LENGTH
        assert version_length(engine) == VERSION_LENGTH
    finally:
        engine.dispose()


def test_a_narrow_version_table_is_widened_and_keeps_its_revision(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with migration_connection(engine) as connection:
            command.upgrade(alembic_config(connection), "0001_initial")
            if connection.dialect.name != "sqlite":
                # The table as Alembic itself makes it: VARCHAR(32), which 0001's id fits.
                Operations(MigrationContext.configure(connection)).alter_column(
                    VERSION_TABLE,
                    "version_num",
                    type_=String(32),
                    existing_type=String(VERSION_LENGTH),
                    existing_nullable=False,
                )
        assert current_revision(engine) == "0001_initial"
        if engine.dialect.name != "sqlite":
            assert version_length(engine) == 32

        upgrade(engine)  # through revision ids longer than 32 characters
        assert current_revision(engine) == head_revision()
        if engine.dialect.name != "sqlite":  # SQLite keeps the declared type as written
            assert version_length(engine) == VERSION_LENGTH
    finally:
        engine.dispose()
