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
