"""Concurrent use from web-server threads and from several Store instances on one file."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from studio.store import Store
from studio.store.engine import make_engine
from studio.store.migrate import current_revision, head_revision

THREADS = 8
PER_THREAD = 25
SPECS = ("smollm2-135m-instruct", "org/model-a", "org/model-b")


def test_concurrent_writes_from_threads_all_land(store: Store, make_record) -> None:
    def write(worker: int) -> list[int]:
        return [
            store.log_exchange(
                make_record(
                    conversation_id=f"conversation-{worker}",
                    turn=turn,
                    model_spec=SPECS[(worker + turn) % len(SPECS)],
                    model_source="bundled" if turn % 3 == worker % 3 else "hub",
                    user_message=f"worker {worker} turn {turn}",
                )
            )
            for turn in range(PER_THREAD)
        ]

    with ThreadPoolExecutor(THREADS) as pool:
        results = list(pool.map(write, range(THREADS)))
    ids = [exchange_id for result in results for exchange_id in result]
    assert len(set(ids)) == THREADS * PER_THREAD
    assert len(store.list_exchanges(limit=1000)) == THREADS * PER_THREAD
    uses = store.models_used()
    assert {use.spec for use in uses} == set(SPECS)
    assert sum(use.exchanges for use in uses) == THREADS * PER_THREAD
    for worker in range(THREADS):
        turns = store.conversation(f"conversation-{worker}")
        assert [r.turn for r in turns] == list(range(PER_THREAD))


def test_stores_opened_at_once_migrate_and_write_safely(tmp_path: Path, make_record) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"

    def open_and_write(worker: int) -> int:
        with Store(url) as own:
            for turn in range(10):
                own.log_exchange(make_record(conversation_id=f"c{worker}", turn=turn))
            own.record_model_use(f"worker-{worker}", "local")
            return len(own.conversation(f"c{worker}"))

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(open_and_write, range(4))) == [10] * 4
    with Store(url) as check:
        assert len(check.list_exchanges(limit=100)) == 40
        assert len(check.models_used()) == 5
    engine = make_engine(url)
    try:
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


def test_results_from_four_threads_to_different_configs_all_land(
    store: Store, make_run, make_spec, make_result
) -> None:
    version = store.save_template_version("t", "x", "h")
    run = make_run(configs=[make_spec(version, seed=seed) for seed in range(4)])
    rows = 30

    def write(config_id: int) -> list[int]:
        return [store.add_comparison_result(make_result(config_id, index)) for index in range(rows)]

    config_ids = [config.id for config in run.configs]
    with ThreadPoolExecutor(4) as pool:
        ids = [result_id for batch in pool.map(write, config_ids) for result_id in batch]
    assert len(set(ids)) == 4 * rows
    for config_id in config_ids:
        assert store.done_indices(config_id) == set(range(rows))
    stored = store.get_comparison_run(run.id)
    assert stored is not None and stored.results_done == 4 * rows
    results = store.comparison_results(run.id)
    assert [(r.config_id, r.example_index) for r in results] == [
        (config_id, index) for config_id in config_ids for index in range(rows)
    ]


def test_saving_template_versions_from_threads_numbers_them_in_turn(store: Store) -> None:
    def save(worker: int) -> list[int]:
        return [
            store.save_template_version("shared", f"{worker}-{n}", f"h{worker}-{n}").version
            for n in range(5)
        ]

    with ThreadPoolExecutor(4) as pool:
        versions = [v for batch in pool.map(save, range(4)) for v in batch]
    assert sorted(versions) == list(range(1, 21))
    assert [v.version for v in store.template_versions("shared")] == list(range(1, 21))
