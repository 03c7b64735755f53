"""Alembic environment of the experiment store.

Normally run by studio.store.migrate.upgrade, which hands over an open connection through
``config.attributes["connection"]``. For offline SQL generation or the alembic CLI, the URL comes
from the ``sqlalchemy.url`` main option instead. Logging is left to the application.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from studio.store.engine import make_engine
from studio.store.migrate import ensure_version_table, migration_connection
from studio.store.schema import Base

config = context.config
target_metadata = Base.metadata


def run_offline() -> None:
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        url=url,
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=bool(url and url.startswith("sqlite")),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online(connection: Connection) -> None:
    ensure_version_table(connection)
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        run_offline()
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        run_online(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set sqlalchemy.url in the Alembic config, e.g. to STUDIO_DB_URL")
    engine = make_engine(url)
    try:
        with migration_connection(engine) as own_connection:
            run_online(own_connection)
    finally:
        engine.dispose()


main()
