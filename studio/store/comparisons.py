"""Comparison runs: their configs, their life cycle and reading them back.

Owns creating a run with all its configs in one transaction, moving it through its statuses
(running, then completed, stopped, failed or interrupted), marking the runs whose process died
as interrupted, and listing runs with how many results each already holds. Results themselves
are in studio.store.results.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import InstrumentedAttribute, Session

from studio.store.base import StoreBase, rowcount
from studio.store.checks import check_process, check_run
from studio.store.records import (
    FINISHED_STATUSES,
    RUN_STATUSES,
    ComparisonConfig,
    ComparisonConfigSpec,
    ComparisonRun,
    check_choice,
)
from studio.store.rows import to_dataset
from studio.store.schema import (
    ComparisonConfigRow,
    ComparisonResultRow,
    ComparisonRunRow,
    DatasetRow,
    TemplateVersionRow,
    utcnow,
)

RESUMABLE_STATUSES = ("stopped", "interrupted", "failed")


class ComparisonsMixin(StoreBase):
    """Create comparison runs, track their status and read them back."""

    def create_comparison_run(
        self,
        *,
        name: str | None,
        scoring: str,
        config: dict[str, Any],
        dataset_id: int,
        shot_pool_id: int | None,
        n_examples: int,
        configs: Sequence[ComparisonConfigSpec],
        host: str | None = None,
        pid: int | None = None,
        judge: dict[str, Any] | None = None,
    ) -> ComparisonRun:
        """Store a new run, status running, with `configs` at positions 0, 1, ... in order.

        `host` and `pid` name the process running it (see mark_dead_runs_interrupted); `judge`
        the judge model, template version, mode and scoring of a judged run. An unknown dataset
        or template version id raises ValueError and stores nothing.
        """
        configs = list(configs)
        check_run(name, scoring, config, n_examples, configs, host, pid)
        with self._session("create a comparison run", write=True) as session:
            datasets = _datasets(session, dataset_id, shot_pool_id)
            versions = _template_versions(session, {spec.template_version_id for spec in configs})
            run = ComparisonRunRow(
                name=name,
                status="running",
                scoring=scoring,
                config=json.loads(json.dumps(config)),  # returned as get_comparison_run would
                dataset=datasets[0],
                shot_pool=datasets[1],
                n_examples=n_examples,
                created_at=utcnow(),
                host=host,
                pid=pid,
                judge=judge,
                configs=[_config_row(i, spec, versions) for i, spec in enumerate(configs)],
            )
            session.add(run)
            session.flush()
            return to_run(run, results_done=0)

    def resume_comparison_run(
        self, run_id: int, *, host: str | None = None, pid: int | None = None
    ) -> ComparisonRun:
        """Set a stopped, interrupted or failed run running again, now in process `pid`.

        Clears finished_at and error; the results already stored stay (see done_indices).
        """
        check_process(host, pid)
        with self._session(f"resume comparison run {run_id}", write=True) as session:
            run = session.get(ComparisonRunRow, run_id)
            if run is None:
                raise ValueError(f"no comparison run with id {run_id}")
            if run.status not in RESUMABLE_STATUSES:
                raise ValueError(
                    f"only a {', '.join(RESUMABLE_STATUSES)} run can be resumed; "
                    f"run {run_id} is {run.status}"
                )
            run.status, run.finished_at, run.error = "running", None, None
            run.host, run.pid = host, pid
            session.flush()
            return to_run(run, results_done=session.scalar(_results_done(run.id)) or 0)

    def finish_comparison_run(self, run_id: int, status: str, error: str | None = None) -> None:
        """Record how a run ended (completed, stopped, failed or interrupted) and when."""
        check_choice("status", status, FINISHED_STATUSES)
        stmt = (
            update(ComparisonRunRow)
            .where(ComparisonRunRow.id == run_id)
            .values(status=status, finished_at=utcnow(), error=error)
        )
        with self._session(f"finish comparison run {run_id}", write=True) as session:
            if rowcount(session.execute(stmt)) == 0:
                raise ValueError(f"no comparison run with id {run_id}")

    def set_config_calibration(self, config_id: int, calibration: dict[str, Any]) -> None:
        """Keep a configuration's contextual-calibration prior (measured once, before its rows)."""
        stmt = (
            update(ComparisonConfigRow)
            .where(ComparisonConfigRow.id == config_id)
            .values(calibration=calibration)
        )
        with self._session(f"calibrate comparison config {config_id}", write=True) as session:
            if rowcount(session.execute(stmt)) == 0:
                raise ValueError(f"no comparison config with id {config_id}")

    def config_calibration(self, config_id: int) -> dict[str, Any] | None:
        """The stored calibration of a configuration, or None (not calibrated, or not yet)."""
        stmt = select(ComparisonConfigRow.calibration).where(ComparisonConfigRow.id == config_id)
        with self._session(f"read comparison config {config_id}") as session:
            return session.scalar(stmt)

    def mark_dead_runs_interrupted(
        self, is_alive: Callable[[str | None, int | None], bool]
    ) -> list[int]:
        """Mark interrupted every running run whose process `is_alive(host, pid)` says is gone.

        `is_alive` is called outside any transaction. Returns the ids marked, oldest first.
        """
        stmt = (
            select(ComparisonRunRow.id, ComparisonRunRow.host, ComparisonRunRow.pid)
            .where(ComparisonRunRow.status == "running")
            .order_by(ComparisonRunRow.id)
        )
        with self._session("list running comparison runs") as session:
            running = session.execute(stmt).all()
        dead = [(run_id, pid) for run_id, host, pid in running if not is_alive(host, pid)]
        if not dead:
            return []
        with self._session("mark comparison runs interrupted", write=True) as session:
            return [run_id for run_id, pid in dead if _interrupt(session, run_id, pid)]

    def get_comparison_run(self, run_id: int) -> ComparisonRun | None:
        stmt = _runs_query().where(ComparisonRunRow.id == run_id)
        with self._session(f"read comparison run {run_id}") as session:
            found = session.execute(stmt).one_or_none()
            return None if found is None else to_run(found[0], found[1])

    def list_comparison_runs(
        self, limit: int = 50, status: str | None = None
    ) -> list[ComparisonRun]:
        """Newest first, optionally only those with `status`; configs included."""
        stmt = (
            _runs_query()
            .order_by(ComparisonRunRow.created_at.desc(), ComparisonRunRow.id.desc())
            .limit(limit)
        )
        if status is not None:
            check_choice("status", status, RUN_STATUSES)
            stmt = stmt.where(ComparisonRunRow.status == status)
        with self._session("list comparison runs") as session:
            return [to_run(run, done) for run, done in session.execute(stmt)]


def to_run(row: ComparisonRunRow, results_done: int) -> ComparisonRun:
    return ComparisonRun(
        id=row.id,
        name=row.name,
        status=row.status,
        scoring=row.scoring,
        config=row.config,
        dataset=to_dataset(row.dataset),
        shot_pool=None if row.shot_pool is None else to_dataset(row.shot_pool),
        n_examples=row.n_examples,
        created_at=row.created_at,
        finished_at=row.finished_at,
        error=row.error,
        configs=[to_config(config) for config in row.configs],
        results_done=results_done,
        judge=row.judge,
    )


def to_config(row: ComparisonConfigRow) -> ComparisonConfig:
    return ComparisonConfig(
        id=row.id,
        run_id=row.run_id,
        position=row.position,
        model_spec=row.model_spec,
        template_version_id=row.template_version_id,
        template_name=row.template_version.template.name,
        template_version=row.template_version.version,
        shots=row.shots,
        seed=row.seed,
        selection=row.selection,
        label=row.label,
        calibration=row.calibration,
    )


def _results_done(run_id: int | InstrumentedAttribute[int]) -> Select[Any]:
    return (
        select(func.count(ComparisonResultRow.id))
        .join(ComparisonConfigRow, ComparisonResultRow.config_id == ComparisonConfigRow.id)
        .where(ComparisonConfigRow.run_id == run_id)
    )


def _runs_query() -> Select[Any]:
    """Runs with their datasets and configs (eager), and their result count in the same query."""
    done = _results_done(ComparisonRunRow.id).scalar_subquery()
    stmt: Select[Any] = select(ComparisonRunRow, done)
    return stmt


def _datasets(
    session: Session, dataset_id: int, shot_pool_id: int | None
) -> tuple[DatasetRow, DatasetRow | None]:
    dataset = session.get(DatasetRow, dataset_id)
    if dataset is None:
        raise ValueError(f"dataset_id {dataset_id} is not a registered dataset")
    if shot_pool_id is None:
        return dataset, None
    shot_pool = session.get(DatasetRow, shot_pool_id)
    if shot_pool is None:
        raise ValueError(f"shot_pool_id {shot_pool_id} is not a registered dataset")
    return dataset, shot_pool


def _template_versions(session: Session, ids: set[int]) -> dict[int, TemplateVersionRow]:
    stmt = select(TemplateVersionRow).where(TemplateVersionRow.id.in_(ids))
    found = {row.id: row for row in session.scalars(stmt)}
    missing = sorted(ids - set(found))
    if missing:
        raise ValueError(f"no template version with id {', '.join(map(str, missing))}")
    return found


def _config_row(
    position: int, spec: ComparisonConfigSpec, versions: dict[int, TemplateVersionRow]
) -> ComparisonConfigRow:
    return ComparisonConfigRow(
        position=position,
        model_spec=spec.model_spec,
        template_version=versions[spec.template_version_id],
        shots=spec.shots,
        seed=spec.seed,
        selection=spec.selection,
        label=spec.label,
    )


def _interrupt(session: Session, run_id: int, pid: int | None) -> bool:
    """Mark one run interrupted unless it stopped running meanwhile; True if it was marked."""
    process = "the process running it" if pid is None else f"the process running it (pid {pid})"
    stmt = (
        update(ComparisonRunRow)
        .where(ComparisonRunRow.id == run_id, ComparisonRunRow.status == "running")
        .values(
            status="interrupted",
            finished_at=utcnow(),
            error=f"{process} ended before it finished",
        )
    )
    return rowcount(session.execute(stmt)) > 0
