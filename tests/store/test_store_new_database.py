"""A new database is created from the ORM models and stamped at the head revision instead of
replaying every migration (studio.store.migrate.upgrade, for a fast first start). These tests prove
the shortcut builds the database the migrations build, on SQLite and PostgreSQL: same tables,
columns, keys, indexes and constraints, same rows (a migration that seeds data would show here),
same revision. A migration out of step with studio/store/schema.py fails here."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, inspect, select

from studio.store import Store
from studio.store.engine import make_engine
from studio.store.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    migration_connection,
)
from studio.store.schema import Base


@pytest.fixture
def replayed_url(db_url: str, tmp_path: Path) -> Iterator[str]:
    """A second empty database on the same backend as `db_url`, for the migrations to build."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'replayed.db'}"
        return
    from tests.pg import require_postgres  # lazy: only the PostgreSQL run needs a second database

    with require_postgres() as url:
        yield url


def replay_migrations(url: str) -> Engine:
    """Build the database the slow way: every migration from the first to head."""
    engine = make_engine(url)
    with migration_connection(engine) as connection:
        command.upgrade(alembic_config(connection), "head")
    return engine


def schema(engine: Engine) -> dict[str, Any]:
    """Everything SQLAlchemy can read back about each table, columns in their order."""
    found = inspect(engine)
    shape: dict[str, Any] = {}
    for table in sorted(found.get_table_names()):
        columns = [{**c, "type": str(c["type"])} for c in found.get_columns(table)]
        shape[table] = {
            "columns": columns,
            "primary key": found.get_pk_constraint(table),
            "foreign keys": sorted(map(repr, found.get_foreign_keys(table))),
            "indexes": sorted(map(repr, found.get_indexes(table))),
            "unique": sorted(map(repr, found.get_unique_constraints(table))),
            "checks": sorted(map(repr, found.get_check_constraints(table))),
        }
    return shape


def rows(engine: Engine) -> dict[str, list[Any]]:
    tables = MetaData()
    tables.reflect(engine)
    with engine.connect() as connection:
        return {
            name: sorted(map(tuple, connection.execute(select(table))), key=repr)
            for name, table in tables.tables.items()
        }


def test_a_new_database_is_the_one_the_migrations_build(db_url: str, replayed_url: str) -> None:
    with Store(db_url):
        pass
    created = make_engine(db_url)
    replayed = replay_migrations(replayed_url)
    try:
        assert current_revision(created) == current_revision(replayed) == head_revision()
        created_schema, replayed_schema = schema(created), schema(replayed)
        assert created_schema.keys() == replayed_schema.keys()
        for table, shape in replayed_schema.items():
            assert created_schema[table] == shape, f"table {table} differs"
        assert rows(created) == rows(replayed)
    finally:
        created.dispose()
        replayed.dispose()


def test_the_replayed_migrations_match_the_orm_models(replayed_url: str) -> None:
    # Opening a store no longer replays them, so check what they build against schema.py here.
    replayed = replay_migrations(replayed_url)
    try:
        with replayed.connect() as connection:
            assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    finally:
        replayed.dispose()
