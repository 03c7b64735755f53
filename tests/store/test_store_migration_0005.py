"""Migration 0005: token counts a served model did not report are NULL, not 0; both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect

from studio.store import Store
from studio.store.migrate import current_revision, upgrade
from studio.store.schema import Base
from tests.migrating import migrate_to

BEFORE = "0004_experiment_annotations"


def _nullable(engine: Engine, table: str) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns(table) if c["nullable"]}


def test_unreported_counts_are_stored_as_unknown(
    store: Store, make_record, make_run, make_result
) -> None:
    exchange = store.log_exchange(make_record(prompt_tokens=None, completion_tokens=None))
    logged = store.get_exchange(exchange)
    assert (logged.prompt_tokens, logged.completion_tokens) == (None, None)
    assert store.list_exchanges()[0].completion_tokens is None
    run = make_run()
    store.add_comparison_result(make_result(run.configs[0].id, 0, prompt_tokens=None))
    assert store.comparison_results(run.id)[0].prompt_tokens is None


def test_a_0004_database_keeps_its_counts_and_downgrading_turns_unknown_into_0(
    store: Store, engine: Engine, make_record, make_run, make_result
) -> None:
    known = store.log_exchange(make_record())
    unknown = store.log_exchange(make_record(turn=1, prompt_tokens=None, completion_tokens=None))
    run = make_run()
    store.add_comparison_result(make_result(run.configs[0].id, 0, prompt_tokens=None))
    migrate_to(engine, BEFORE, down=True)
    assert current_revision(engine) == BEFORE
    assert not {"prompt_tokens", "completion_tokens"} & _nullable(engine, "playground_exchanges")
    assert "prompt_tokens" not in _nullable(engine, "comparison_results")
    upgrade(engine)
    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    assert {"prompt_tokens", "completion_tokens"} <= _nullable(engine, "playground_exchanges")
    old = store.get_exchange(known)
    assert (old.prompt_tokens, old.completion_tokens) == (12, 3)  # known counts untouched
    zeroed = store.get_exchange(unknown)
    assert (zeroed.prompt_tokens, zeroed.completion_tokens) == (0, 0)  # what 0004 could hold
    assert store.comparison_results(run.id)[0].prompt_tokens == 0
