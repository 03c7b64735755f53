"""Step a test database between Alembic revisions (the migration tests)."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine

from studio.store.migrate import alembic_config, migration_connection


def migrate_to(engine: Engine, revision: str, *, down: bool = False) -> None:
    """Upgrade (or downgrade) the database to `revision` with Alembic."""
    with migration_connection(engine) as connection:
        action = command.downgrade if down else command.upgrade
        action(alembic_config(connection), revision)
