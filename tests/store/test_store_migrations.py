"""Migrations: from an empty database to head, idempotent reopening, schema shape and drift."""

from __future__ import annotations

import logging
import subprocess
import sys

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from studio.store import Store, StoreError
from studio.store.engine import make_engine
from studio.store.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    migration_connection,
    upgrade,
)
from studio.store.schema import Base

EXCHANGE_COLUMNS = {
    "id",
    "conversation_id",
    "turn",
    "model_id",
    "quantization",
    "mode",
    "system_prompt",
    "history",
    "user_message",
    "prompt_text",
    "parameters",
    "response",
    "prompt_tokens",
    "completion_tokens",
    "latency_ms",
    "first_token_ms",
    "finish_reason",
    "error",
    "created_at",
}
NULLABLE_EXCHANGE_COLUMNS = {
    "system_prompt",
    "first_token_ms",
    "error",
    "prompt_tokens",
    "completion_tokens",
}


def test_empty_database_is_migrated_to_head(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) is None
        upgrade(engine)
        assert current_revision(engine) == head_revision() == "0008_dataset_versions"
    finally:
        engine.dispose()


def test_opening_twice_is_idempotent(db_url: str, make_record) -> None:
    with Store(db_url) as first:
        exchange_id = first.log_exchange(make_record())
    with Store(db_url) as second:
        assert second.get_exchange(exchange_id) is not None
    engine = make_engine(db_url)
    try:
        assert current_revision(engine) == head_revision()
        with engine.connect() as connection:
            versions = connection.execute(text("SELECT version_num FROM alembic_version"))
            assert versions.scalars().all() == [head_revision()]
    finally:
        engine.dispose()


def test_tables_columns_and_constraints(store: Store, db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        inspector = inspect(engine)
        assert {"models", "playground_exchanges", "alembic_version"} <= set(
            inspector.get_table_names()
        )
        models = {c["name"]: c for c in inspector.get_columns("models")}
        assert set(models) == {
            "id",
            "spec",
            "source",
            "resolved_path",
            "first_used_at",
            "last_used_at",
        }
        assert models["resolved_path"]["nullable"] and not models["spec"]["nullable"]
        exchanges = {c["name"]: c for c in inspector.get_columns("playground_exchanges")}
        assert set(exchanges) == EXCHANGE_COLUMNS
        nullable = {name for name, column in exchanges.items() if column["nullable"]}
        assert nullable == NULLABLE_EXCHANGE_COLUMNS
        unique = inspector.get_unique_constraints("models")
        assert [(u["name"], u["column_names"]) for u in unique] == [("uq_models_spec", ["spec"])]
        (foreign_key,) = inspector.get_foreign_keys("playground_exchanges")
        assert foreign_key["name"] == "fk_playground_exchanges_model_id_models"
        assert foreign_key["referred_table"] == "models"
        assert foreign_key["options"].get("ondelete") == "RESTRICT"
        indexes = {i["name"] for i in inspector.get_indexes("playground_exchanges")}
        assert indexes == {
            "ix_playground_exchanges_conversation_id",
            "ix_playground_exchanges_created_at",
            "ix_playground_exchanges_model_id",
        }
    finally:
        engine.dispose()


def test_migrations_match_the_orm_models(store: Store, db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection)
            assert compare_metadata(context, Base.metadata) == []
    finally:
        engine.dispose()


def test_downgrade_to_base_and_upgrade_again(store: Store, db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with migration_connection(engine) as connection:
            command.downgrade(alembic_config(connection), "base")
        assert current_revision(engine) is None
        assert set(inspect(engine).get_table_names()) == {"alembic_version"}
        upgrade(engine)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_database_from_a_newer_version_is_refused(store: Store, db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = '9999_future'"))
    finally:
        engine.dispose()
    with pytest.raises(StoreError, match="Upgrade Instruct Studio") as caught:
        Store(db_url)
    assert "9999_future" in str(caught.value)


def test_opening_leaves_logging_configuration_alone(db_url: str) -> None:
    root = logging.getLogger()
    before = (root.level, list(root.handlers), logging.getLogger("alembic").handlers[:])
    with Store(db_url):
        pass
    after = (root.level, list(root.handlers), logging.getLogger("alembic").handlers[:])
    assert after == before


def test_store_imports_no_ui_or_ml_libraries() -> None:
    code = (
        "import sys, studio.store; "
        "print(sorted({'gradio', 'torch', 'transformers'} & {m.split('.')[0] "
        "for m in sys.modules}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
