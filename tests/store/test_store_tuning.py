"""Tuning runs in the store: queue order, start races, stop and cancel, finish, resume,
dead workers marked interrupted, metric points and adapter registration."""

from __future__ import annotations

import pytest

from studio.store import AdapterRecord, MetricPoint, Store


def _queue(store: Store, name: str = "sst2-lora"):
    return store.create_tuning_run(
        name=name,
        config={"name": name, "training": {"max_steps": 3}},
        base_model="smollm2-135m-instruct",
        work_dir=f"/tmp/work/{name}",
        adapter_path=f"/tmp/adapters/{name}",
    )


def test_queue_is_oldest_first_and_start_is_claimed_once(store: Store) -> None:
    first, second = _queue(store, "a"), _queue(store, "b")
    assert first.status == second.status == "queued"
    assert store.next_queued_tuning_run().id == first.id  # type: ignore[union-attr]
    assert store.start_tuning_run(first.id, host="h", pid=10)
    assert not store.start_tuning_run(first.id, host="h", pid=11)  # already taken
    run = store.get_tuning_run(first.id)
    assert run is not None and (run.status, run.pid, run.host) == ("running", 10, "h")
    assert run.started_at is not None
    assert store.next_queued_tuning_run().id == second.id  # type: ignore[union-attr]


def test_stop_flags_a_running_run_and_cancels_a_queued_one(store: Store) -> None:
    running, queued = _queue(store, "a"), _queue(store, "b")
    store.start_tuning_run(running.id, host="h", pid=10)
    assert store.request_tuning_stop(running.id) == "running"
    assert store.tuning_stop_requested(running.id)
    assert store.request_tuning_stop(queued.id) == "cancelled"
    cancelled = store.get_tuning_run(queued.id)
    assert cancelled is not None and cancelled.finished and cancelled.error
    assert not store.start_tuning_run(queued.id, host="h", pid=12)
    with pytest.raises(ValueError, match="no tuning run"):
        store.request_tuning_stop(999)


def test_finish_and_resume_keep_metrics(store: Store) -> None:
    run = _queue(store)
    store.start_tuning_run(run.id, host="h", pid=10)
    store.add_metric_points(
        run.id,
        [MetricPoint(step=1, loss=2.0, learning_rate=1e-4), MetricPoint(step=1, eval_loss=2.5)],
    )
    store.set_tuning_progress(run.id, {"step": 1, "total_steps": 3})
    store.finish_tuning_run(run.id, "stopped", summary={"train_loss": 2.0})
    done = store.get_tuning_run(run.id)
    assert done is not None
    assert (done.status, done.summary, done.progress["step"]) == ("stopped", {"train_loss": 2.0}, 1)
    again = store.requeue_tuning_run(run.id)
    assert (again.status, again.resume, again.pid, again.error) == ("queued", True, None, None)
    assert [p.loss for p in store.metric_points(run.id)] == [2.0, None]
    with pytest.raises(ValueError, match="only a stopped, failed, interrupted run"):
        store.requeue_tuning_run(run.id)
    with pytest.raises(ValueError, match="status"):
        store.finish_tuning_run(run.id, "done")


def test_dead_workers_are_marked_interrupted_never_completed(store: Store) -> None:
    alive, dead = _queue(store, "a"), _queue(store, "b")
    store.start_tuning_run(alive.id, host="h", pid=10)
    store.start_tuning_run(dead.id, host="h", pid=11)
    marked = store.mark_dead_tuning_runs_interrupted(lambda _host, pid: pid == 10)
    assert marked == [dead.id]
    interrupted = store.get_tuning_run(dead.id)
    assert interrupted is not None and interrupted.status == "interrupted"
    assert "pid 11" in (interrupted.error or "")
    assert store.get_tuning_run(alive.id).status == "running"  # type: ignore[union-attr]


def test_adapter_registration_is_upserted_by_path(store: Store) -> None:
    run = _queue(store)
    first = store.register_adapter(
        AdapterRecord(
            name="sst2-lora",
            path="/a/sst2-lora",
            base_model="smollm2-135m-instruct",
            tuning_run_id=run.id,
            metrics={"eval_loss": 0.3},
        )
    )
    second = store.register_adapter(
        AdapterRecord(
            name="sst2-lora", path="/a/sst2-lora", base_model="x", metrics={"eval_loss": 0.2}
        )
    )
    assert first.id == second.id
    [listed] = store.list_adapter_records()
    assert (listed.base_model, listed.metrics) == ("x", {"eval_loss": 0.2})
    assert store.adapter_record("/a/sst2-lora") == listed
    assert store.list_tuning_runs(status="queued")[0].id == run.id
