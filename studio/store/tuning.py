"""Tuning runs, their metric points and the adapters they produce.

Owns the life cycle of a training job in the store: queued (in creation order), running in one
worker process, then completed, stopped, failed, interrupted or cancelled. The worker writes
progress and metric points; the studio reads them to draw charts and re-attach after a restart.
Stop is a flag the worker polls (no signals needed across hosts). Adapters are registered by
folder and read back by folder or id.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import delete, select, update

from studio.store.base import StoreBase, rowcount
from studio.store.checks import check_process
from studio.store.records import (
    TUNING_FINISHED,
    TUNING_RESUMABLE,
    TUNING_STATUSES,
    AdapterRecord,
    MetricPoint,
    TuningRun,
    check_choice,
)
from studio.store.rows import point_row
from studio.store.schema import AdapterRow, MetricPointRow, TuningRunRow, utcnow


class TuningMixin(StoreBase):
    """Queue, run, stop, finish and read tuning runs; register adapters."""

    def create_tuning_run(
        self,
        *,
        name: str,
        config: dict[str, Any],
        base_model: str,
        work_dir: str,
        adapter_path: str,
        dataset_id: int | None = None,
        template_version_id: int | None = None,
    ) -> TuningRun:
        """Queue a new run (status queued); the scheduler starts queued runs oldest first."""
        with self._session("queue a tuning run", write=True) as session:
            row = TuningRunRow(
                name=name,
                status="queued",
                config=json.loads(json.dumps(config)),
                base_model=base_model,
                dataset_id=dataset_id,
                template_version_id=template_version_id,
                work_dir=work_dir,
                adapter_path=adapter_path,
                progress={},
                summary=None,
                stop_requested=False,
                resume=False,
                created_at=utcnow(),
            )
            session.add(row)
            session.flush()
            return _to_run(row)

    def start_tuning_run(self, run_id: int, *, host: str, pid: int) -> bool:
        """Queued -> running in process `pid`; False if someone else started or cancelled it."""
        check_process(host, pid)
        stmt = (
            update(TuningRunRow)
            .where(TuningRunRow.id == run_id, TuningRunRow.status == "queued")
            .values(status="running", started_at=utcnow(), host=host, pid=pid, error=None)
        )
        with self._session(f"start tuning run {run_id}", write=True) as session:
            return rowcount(session.execute(stmt)) > 0

    def next_queued_tuning_run(self) -> TuningRun | None:
        stmt = select(TuningRunRow).where(TuningRunRow.status == "queued").order_by(TuningRunRow.id)
        with self._session("read the tuning queue") as session:
            row = session.scalars(stmt.limit(1)).first()
            return None if row is None else _to_run(row)

    def set_tuning_progress(self, run_id: int, progress: dict[str, Any]) -> None:
        stmt = update(TuningRunRow).where(TuningRunRow.id == run_id).values(progress=progress)
        with self._session(f"record progress of tuning run {run_id}", write=True) as session:
            session.execute(stmt)

    def add_metric_points(self, run_id: int, points: Sequence[MetricPoint]) -> None:
        with self._session(f"record metrics of tuning run {run_id}", write=True) as session:
            session.add_all(point_row(run_id, point) for point in points)

    def delete_metric_points_after(self, run_id: int, step: int) -> int:
        """Drop a run's points past `step`: a run resumed from checkpoint-`step` trains and logs
        those steps again, and each step is recorded once. Returns how many were dropped."""
        stmt = delete(MetricPointRow).where(
            MetricPointRow.tuning_run_id == run_id, MetricPointRow.step > step
        )
        with self._session(f"trim metrics of tuning run {run_id}", write=True) as session:
            return rowcount(session.execute(stmt))

    def metric_points(self, run_id: int) -> list[MetricPoint]:
        stmt = (
            select(MetricPointRow)
            .where(MetricPointRow.tuning_run_id == run_id)
            .order_by(MetricPointRow.step, MetricPointRow.id)
        )
        with self._session(f"read metrics of tuning run {run_id}") as session:
            return [_to_point(row) for row in session.scalars(stmt)]

    def request_tuning_stop(self, run_id: int) -> str:
        """Stop a run: a running one saves its adapter at the next step and ends 'stopped';
        a queued one is cancelled. Returns the run's status afterwards."""
        with self._session(f"stop tuning run {run_id}", write=True) as session:
            row = session.get(TuningRunRow, run_id)
            if row is None:
                raise ValueError(f"no tuning run with id {run_id}")
            if row.status == "queued":
                row.status, row.finished_at = "cancelled", utcnow()
                row.error = "cancelled while queued"
            elif row.status == "running":
                row.stop_requested = True
            return row.status

    def tuning_stop_requested(self, run_id: int) -> bool:
        stmt = select(TuningRunRow.stop_requested).where(TuningRunRow.id == run_id)
        with self._session(f"read tuning run {run_id}") as session:
            return bool(session.scalar(stmt))

    def finish_tuning_run(
        self,
        run_id: int,
        status: str,
        *,
        error: str | None = None,
        summary: dict[str, Any] | None = None,
    ) -> None:
        """Record how a run ended; `summary` holds the final metrics."""
        check_choice("status", status, TUNING_FINISHED)
        values: dict[str, Any] = {"status": status, "finished_at": utcnow(), "error": error}
        if summary is not None:
            values["summary"] = json.loads(json.dumps(summary))
        stmt = update(TuningRunRow).where(TuningRunRow.id == run_id).values(**values)
        with self._session(f"finish tuning run {run_id}", write=True) as session:
            if rowcount(session.execute(stmt)) == 0:
                raise ValueError(f"no tuning run with id {run_id}")

    def requeue_tuning_run(self, run_id: int) -> TuningRun:
        """Put a stopped, failed or interrupted run back in the queue to resume from its last
        checkpoint; it keeps its id, config and metric points."""
        with self._session(f"resume tuning run {run_id}", write=True) as session:
            row = session.get(TuningRunRow, run_id)
            if row is None:
                raise ValueError(f"no tuning run with id {run_id}")
            if row.status not in TUNING_RESUMABLE:
                raise ValueError(
                    f"only a {', '.join(TUNING_RESUMABLE)} run can be resumed; "
                    f"run {run_id} is {row.status}"
                )
            row.status, row.resume, row.stop_requested = "queued", True, False
            row.finished_at, row.error, row.pid, row.host = None, None, None, None
            session.flush()
            return _to_run(row)

    def mark_dead_tuning_runs_interrupted(
        self, is_alive: Callable[[str | None, int | None], bool]
    ) -> list[int]:
        """Mark interrupted every running run whose worker `is_alive(host, pid)` says is gone."""
        stmt = select(TuningRunRow.id, TuningRunRow.host, TuningRunRow.pid).where(
            TuningRunRow.status == "running"
        )
        with self._session("list running tuning runs") as session:
            running = session.execute(stmt.order_by(TuningRunRow.id)).all()
        dead = [(run_id, pid) for run_id, host, pid in running if not is_alive(host, pid)]
        marked = []
        for run_id, pid in dead:
            error = (
                f"the training worker (pid {pid}) ended without finishing (killed, or the "
                "machine restarted); resume continues from its last checkpoint"
            )
            update_stmt = (
                update(TuningRunRow)
                .where(TuningRunRow.id == run_id, TuningRunRow.status == "running")
                .values(status="interrupted", finished_at=utcnow(), error=error)
            )
            with self._session("mark a tuning run interrupted", write=True) as session:
                if rowcount(session.execute(update_stmt)):
                    marked.append(run_id)
        return marked

    def get_tuning_run(self, run_id: int) -> TuningRun | None:
        with self._session(f"read tuning run {run_id}") as session:
            row = session.get(TuningRunRow, run_id)
            return None if row is None else _to_run(row)

    def list_tuning_runs(self, limit: int = 50, status: str | None = None) -> list[TuningRun]:
        """Newest first, optionally only those with `status`."""
        stmt = select(TuningRunRow).order_by(TuningRunRow.id.desc()).limit(limit)
        if status is not None:
            check_choice("status", status, TUNING_STATUSES)
            stmt = stmt.where(TuningRunRow.status == status)
        with self._session("list tuning runs") as session:
            return [_to_run(row) for row in session.scalars(stmt)]

    def register_adapter(self, adapter: AdapterRecord) -> AdapterRecord:
        """Record an adapter folder; a folder registered before (retrained) is updated."""
        with self._session(f"register adapter {adapter.name}", write=True) as session:
            row = session.scalars(select(AdapterRow).where(AdapterRow.path == adapter.path)).first()
            if row is None:
                row = AdapterRow(path=adapter.path)
                session.add(row)
            row.name, row.base_model = adapter.name, adapter.base_model
            row.tuning_run_id, row.dataset_id = adapter.tuning_run_id, adapter.dataset_id
            row.template_version_id = adapter.template_version_id
            row.metrics = json.loads(json.dumps(adapter.metrics))
            row.created_at = adapter.created_at or utcnow()
            session.flush()
            return _to_adapter(row)

    def list_adapter_records(self) -> list[AdapterRecord]:
        stmt = select(AdapterRow).order_by(AdapterRow.created_at.desc(), AdapterRow.id.desc())
        with self._session("list adapters") as session:
            return [_to_adapter(row) for row in session.scalars(stmt)]

    def adapter_record(self, path: str) -> AdapterRecord | None:
        with self._session("read an adapter") as session:
            row = session.scalars(select(AdapterRow).where(AdapterRow.path == path)).first()
            return None if row is None else _to_adapter(row)

    def adapter_by_id(self, adapter_id: int) -> AdapterRecord | None:
        with self._session(f"read adapter {adapter_id}") as session:
            row = session.get(AdapterRow, adapter_id)
            return None if row is None else _to_adapter(row)


def _to_run(row: TuningRunRow) -> TuningRun:
    return TuningRun(
        id=row.id,
        name=row.name,
        status=row.status,
        config=row.config,
        base_model=row.base_model,
        dataset_id=row.dataset_id,
        template_version_id=row.template_version_id,
        work_dir=row.work_dir,
        adapter_path=row.adapter_path,
        progress=row.progress,
        summary=row.summary,
        stop_requested=row.stop_requested,
        resume=row.resume,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        error=row.error,
        host=row.host,
        pid=row.pid,
    )


def _to_point(row: MetricPointRow) -> MetricPoint:
    return MetricPoint(
        step=row.step,
        epoch=row.epoch,
        loss=row.loss,
        eval_loss=row.eval_loss,
        learning_rate=row.learning_rate,
        grad_norm=row.grad_norm,
        tokens_per_second=row.tokens_per_second,
        eta_seconds=row.eta_seconds,
        created_at=row.created_at,
    )


def _to_adapter(row: AdapterRow) -> AdapterRecord:
    return AdapterRecord(
        id=row.id,
        name=row.name,
        path=row.path,
        base_model=row.base_model,
        tuning_run_id=row.tuning_run_id,
        dataset_id=row.dataset_id,
        template_version_id=row.template_version_id,
        metrics=row.metrics,
        created_at=row.created_at,
    )
