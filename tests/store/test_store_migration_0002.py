"""Migration 0002 (prompt templates, datasets, comparisons): upgrading data, downgrading, shape."""

from __future__ import annotations

import io

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from studio.store import Store
from studio.store.migrate import (
    alembic_config,
    current_revision,
    head_revision,
    upgrade,
)
from studio.store.schema import Base
from tests.migrating import migrate_to

INITIAL_TABLES = {"alembic_version", "models", "playground_exchanges"}
NEW_TABLES = {
    "prompt_templates",
    "template_versions",
    "datasets",
    "comparison_runs",
    "comparison_configs",
    "comparison_results",
}
TUNING_TABLES = {"tuning_runs", "metric_points", "adapters"}
WRITTEN_DATA_TABLES = {"dataset_versions"}  # 0008
EXPERIMENT_TABLES = {"comparison_run_tags", "tuning_run_tags"}


def _insert_0001_rows(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO models (id, spec, source, first_used_at, last_used_at) VALUES "
                "(1, 'smollm2-135m-instruct', 'bundled', '2025-01-02 03:04:05+00:00', "
                "'2025-01-02 03:04:05+00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO playground_exchanges (id, conversation_id, turn, model_id, "
                "quantization, mode, history, user_message, prompt_text, parameters, response, "
                "prompt_tokens, completion_tokens, latency_ms, finish_reason, created_at) VALUES "
                "(1, 'c1', 0, 1, 'none', 'chat', '[]', 'Hi', 'Hi', '{\"seed\": 1}', 'Hello', 2, "
                "1, 3.5, 'eos', '2025-01-02 03:04:05+00:00')"
            )
        )


def test_upgrading_a_0001_database_keeps_its_data(engine: Engine, db_url: str) -> None:
    migrate_to(engine, "0001_initial")
    assert set(inspect(engine).get_table_names()) == INITIAL_TABLES
    _insert_0001_rows(engine)
    with Store(db_url) as store:
        exchange = store.get_exchange(1)
        assert exchange is not None
        assert (exchange.user_message, exchange.response) == ("Hi", "Hello")
        assert exchange.parameters == {"seed": 1}
        assert [use.spec for use in store.models_used()] == ["smollm2-135m-instruct"]
        assert store.latest_template_versions() == []
    assert current_revision(engine) == head_revision() == "0008_dataset_versions"
    assert set(inspect(engine).get_table_names()) == (
        INITIAL_TABLES | NEW_TABLES | TUNING_TABLES | EXPERIMENT_TABLES | WRITTEN_DATA_TABLES
    )


def test_downgrade_to_0001_and_up_again(
    store: Store, engine: Engine, make_record, make_run, make_result
) -> None:
    exchange_id = store.log_exchange(make_record())
    run = make_run()
    store.add_comparison_result(make_result(run.configs[0].id, 0))
    migrate_to(engine, "0001_initial", down=True)
    assert current_revision(engine) == "0001_initial"
    assert set(inspect(engine).get_table_names()) == INITIAL_TABLES
    assert store.get_exchange(exchange_id) is not None
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert store.list_comparison_runs() == []
    assert make_run().configs[0].template_version == 1


def test_new_tables_constraints_and_indexes(store: Store, engine: Engine) -> None:
    inspector = inspect(engine)
    unique = {
        table: sorted(str(u["name"]) for u in inspector.get_unique_constraints(table))
        for table in NEW_TABLES
    }
    assert unique == {
        "prompt_templates": ["uq_prompt_templates_name"],
        "template_versions": [
            "uq_template_versions_template_id_content_hash",
            "uq_template_versions_template_id_version",
        ],
        "datasets": ["uq_datasets_content_hash"],
        "comparison_runs": [],
        "comparison_configs": ["uq_comparison_configs_run_id_position"],
        "comparison_results": ["uq_comparison_results_config_id_example_index"],
    }
    foreign_keys = {
        str(fk["name"]): fk["options"].get("ondelete")
        for table in NEW_TABLES
        for fk in inspector.get_foreign_keys(table)
    }
    assert foreign_keys == {
        "fk_template_versions_template_id_prompt_templates": "RESTRICT",
        "fk_comparison_runs_dataset_id_datasets": "RESTRICT",
        "fk_comparison_runs_shot_pool_id_datasets": "RESTRICT",
        "fk_comparison_configs_run_id_comparison_runs": "CASCADE",
        "fk_comparison_configs_template_version_id_template_versions": "RESTRICT",
        "fk_comparison_results_config_id_comparison_configs": "CASCADE",
    }
    assert all(len(name) <= 63 for name in foreign_keys)  # PostgreSQL's identifier limit
    # PostgreSQL also lists the index behind each unique constraint, marked as such.
    indexes = inspector.get_indexes("comparison_results")
    assert {i["name"] for i in indexes if not i.get("duplicates_constraint")} == {
        "ix_comparison_results_config_id"
    }
    nullable = {c["name"] for c in inspector.get_columns("comparison_runs") if c["nullable"]}
    added_by_0004 = {"display_name", "note"}
    added_by_0007 = {"judge"}
    before_0004 = {"name", "shot_pool_id", "finished_at", "error", "host", "pid"}
    assert nullable == before_0004 | added_by_0004 | added_by_0007


def test_offline_sql_creates_the_new_tables() -> None:
    """A team database's administrator can review the migrations as a PostgreSQL script
    (`alembic upgrade head --sql`); no server is needed. (SQLite cannot: its column changes
    rebuild tables, which needs a live database to read them from.)"""
    buffer = io.StringIO()
    config = alembic_config()
    config.output_buffer = buffer
    config.set_main_option("sqlalchemy.url", "postgresql+psycopg://studio@db.invalid/studio")
    command.upgrade(config, "head", sql=True)
    script = buffer.getvalue()
    for table in ("models", "playground_exchanges", *NEW_TABLES):
        assert f"CREATE TABLE {table}" in script
    assert "ALTER TABLE playground_exchanges ALTER COLUMN prompt_tokens DROP NOT NULL" in script
