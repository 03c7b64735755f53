"""Migration 0004 (experiment annotations): upgrading data, downgrading, shape; both backends."""

from __future__ import annotations

from datetime import datetime, timezone

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, Table, inspect

from studio.store import RunAnnotations, Store
from studio.store.migrate import (
    current_revision,
    head_revision,
    upgrade,
)
from studio.store.schema import Base
from tests.migrating import migrate_to

TAG_TABLES = {"comparison_run_tags", "tuning_run_tags"}


def test_downgrade_to_0003_keeps_runs_and_upgrading_again_adds_empty_annotations(
    store: Store, engine: Engine, make_run, make_result
) -> None:
    run = make_run()
    store.add_comparison_result(make_result(run.configs[0].id, 0))
    store.rename_run("comparison", run.id, "named")
    store.tag_run("comparison", run.id, "kept?")
    migrate_to(engine, "0003_tuning", down=True)
    assert current_revision(engine) == "0003_tuning"
    assert not TAG_TABLES & set(inspect(engine).get_table_names())
    columns = {c["name"] for c in inspect(engine).get_columns("comparison_runs")}
    assert not {"display_name", "note"} & columns
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert store.comparison_results(run.id)[0].example_index == 0
    assert store.run_annotations("comparison") == {run.id: RunAnnotations()}
    assert store.tag_run("comparison", run.id, "after")


def test_tag_tables_constraints_and_indexes(store: Store, engine: Engine) -> None:
    inspector = inspect(engine)
    unique = {t: [u["name"] for u in inspector.get_unique_constraints(t)] for t in TAG_TABLES}
    assert unique == {
        "comparison_run_tags": ["uq_comparison_run_tags_comparison_run_id_tag"],
        "tuning_run_tags": ["uq_tuning_run_tags_tuning_run_id_tag"],
    }
    foreign_keys = {
        str(fk["name"]): fk["options"].get("ondelete")
        for table in TAG_TABLES
        for fk in inspector.get_foreign_keys(table)
    }
    assert foreign_keys == {
        "fk_comparison_run_tags_comparison_run_id_comparison_runs": "CASCADE",
        "fk_tuning_run_tags_tuning_run_id_tuning_runs": "CASCADE",
    }
    assert all(len(name) <= 63 for name in foreign_keys)  # PostgreSQL's identifier limit
    # PostgreSQL also reports the unique constraint's own index; the tag index is ours.
    assert "ix_tuning_run_tags_tag" in {i["name"] for i in inspector.get_indexes("tuning_run_tags")}
    for table in ("comparison_runs", "tuning_runs"):
        nullable = {c["name"] for c in inspector.get_columns(table) if c["nullable"]}
        assert {"display_name", "note"} <= nullable


def test_upgrading_a_0003_database_keeps_its_runs(db_url: str, engine: Engine) -> None:
    migrate_to(engine, "0003_tuning")
    when = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)
    with engine.begin() as connection:
        runs = Table("tuning_runs", MetaData(), autoload_with=connection)
        connection.execute(
            runs.insert().values(
                id=1, name="old", status="completed", config={"name": "old"}, base_model="m",
                work_dir="/w", adapter_path="/a/old", progress={"step": 4}, summary=None,
                stop_requested=False, resume=False, created_at=when,
            )
        )  # fmt: skip
    with Store(db_url) as store:
        assert current_revision(engine) == head_revision()
        run = store.get_tuning_run(1)
        assert run is not None and (run.name, run.progress) == ("old", {"step": 4})
        assert store.run_annotations("tuning") == {1: RunAnnotations()}
        store.annotate_run("tuning", 1, "trained before 0004")
        assert store.run_annotations("tuning")[1].note == "trained before 0004"
