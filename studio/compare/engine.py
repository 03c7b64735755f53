"""Run a prepared grid: every cell over every example, each result stored the moment it is known.

A stop, a crash or a closed browser keeps every finished row; the run is marked stopped (or, if the
process died, interrupted at the next start-up) rather than lost.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from studio.compare.config import CompareConfig
from studio.compare.judges import Judge, grade, judge_jobs, rubric_of
from studio.compare.prepare import GridCell, Prepared, prepare_run
from studio.compare.scoring import content_free_calibration, score_cell
from studio.inference.registry import ModelBackends
from studio.models.served import is_served_spec
from studio.store import Store
from studio.store.records import ComparisonConfigSpec, ComparisonResult
from studio.templates import PromptTemplate, parse_template

__all__ = ["ComparisonRunner", "Prepared", "prepare_run"]


@dataclass(frozen=True)
class RunStarted:
    run_id: int
    total: int  # examples × cells


@dataclass(frozen=True)
class CellStarted:
    position: int
    label: str


@dataclass(frozen=True)
class RowDone:
    position: int
    result: ComparisonResult
    done: int
    total: int
    examples_per_s: float


@dataclass(frozen=True)
class JudgeStarted:
    total: int  # answers to judge (pairwise: pairs, each judged in both orders)


@dataclass(frozen=True)
class RowJudged:
    position: int
    example_index: int
    judgement: dict[str, Any]
    done: int
    total: int


@dataclass(frozen=True)
class RunFinished:
    run_id: int
    status: str  # completed | stopped | failed
    error: str | None = None


Event = RunStarted | CellStarted | RowDone | JudgeStarted | RowJudged | RunFinished


class ComparisonRunner:
    """Executes comparison runs against the store and the shared model manager."""

    def __init__(self, store: Store, backends: ModelBackends) -> None:
        self.store = store
        self.backends = backends
        self.policy = backends.policy

    def run(self, config: CompareConfig, stop: threading.Event | None = None) -> Iterator[Event]:
        # All validation happens before anything is stored.
        prepared = prepare_run(config, self.policy)
        # A model that cannot be found or reached fails here, before anything is stored.
        self.backends.check(config.models, config.scoring, prepared.templates)
        judge = self._judge(config, prepared.judge_template)
        run_id, config_ids = self._create(prepared, judge)
        yield from self._execute(prepared, run_id, config_ids, {}, stop or threading.Event(), judge)

    def _judge(self, config: CompareConfig, template: PromptTemplate | None) -> Judge | None:
        """The run's judge, its model found (or its server reached) before anything is stored."""
        if config.judge is None or template is None:
            return None
        scoring = "generate" if is_served_spec(config.judge) else "loglik"
        self.backends.check([config.judge], scoring, [template])
        rubric = rubric_of(template, config.judge_mode)
        return Judge(config.judge, template, rubric, scoring)

    def resume(self, run_id: int, stop: threading.Event | None = None) -> Iterator[Event]:
        """Continue a stopped, interrupted or failed run: only the missing rows are computed,
        with the exact template versions and data the run started with."""
        run = self.store.get_comparison_run(run_id)
        if run is None:
            raise ValueError(f"comparison run #{run_id} does not exist")
        prepared = prepare_run(CompareConfig(**run.config), self.policy)
        if prepared.evaluation_source.content_hash != run.dataset.content_hash:
            raise ValueError(
                f"the data of run #{run_id} ({self.policy.shown_path(run.config['data'])}) "
                "changed since it started (its content hash differs); start a new run instead."
            )
        cells = []
        for cfg in run.configs:
            version = self.store.get_template_version(cfg.template_version_id)
            assert version is not None  # versions used by runs are never deleted
            template = parse_template(version.content, f"{cfg.template_name}@v{version.version}")
            cells.append(GridCell(cfg.position, cfg.model_spec, template, cfg.shots, cfg.seed))
        prepared = replace(prepared, cells=cells)
        # The stored grid, not the config, decides what a resume scores (an imported run's
        # rows can disagree with its config): the demo cap and model rules apply to it.
        self.policy.check_comparison_rows(len(prepared.evaluation), len(cells))
        templates = [cell.template for cell in cells]
        self.backends.check([cell.model for cell in cells], run.scoring, templates)
        judge = self._stored_judge(prepared.config, run.judge)
        done = {cfg.position: self.store.done_indices(cfg.id) for cfg in run.configs}
        self.store.resume_comparison_run(run_id, host=socket.gethostname(), pid=os.getpid())
        config_ids = {cfg.position: cfg.id for cfg in run.configs}
        stop = stop or threading.Event()
        yield from self._execute(prepared, run_id, config_ids, done, stop, judge)

    def _stored_judge(self, config: CompareConfig, stored: dict[str, Any] | None) -> Judge | None:
        """A resumed run's judge, with the exact template version it started with."""
        if stored is None:
            return None
        version = self.store.get_template_version(stored["template_version_id"])
        assert version is not None  # versions used by runs are never deleted
        template = parse_template(version.content, f"{version.template_name}@v{version.version}")
        return self._judge(config, template)

    def _execute(
        self,
        prepared: Prepared,
        run_id: int,
        config_ids: dict[int, int],
        done_before: dict[int, set[int]],
        stop: threading.Event,
        judge: Judge | None = None,
    ) -> Iterator[Event]:
        total = len(prepared.evaluation) * len(prepared.cells)
        yield RunStarted(run_id, total)
        done = sum(len(v) for v in done_before.values())
        started, fresh = time.perf_counter(), 0
        try:
            for cell in prepared.cells:
                skip = done_before.get(cell.position, set())
                if len(skip) >= len(prepared.evaluation):
                    continue
                yield CellStarted(cell.position, cell.label)
                cell_rows = self._run_cell(prepared, cell, config_ids[cell.position], stop, skip)
                for result in cell_rows:
                    self.store.add_comparison_result(result)
                    done, fresh = done + 1, fresh + 1
                    rate = fresh / max(time.perf_counter() - started, 1e-9)
                    yield RowDone(cell.position, result, done, total, rate)
                if stop.is_set():
                    break
            if judge is not None and not stop.is_set():
                yield from self._judge_answers(prepared, run_id, judge, stop)
        except Exception as exc:
            self.store.finish_comparison_run(run_id, "failed", f"{type(exc).__name__}: {exc}")
            yield RunFinished(run_id, "failed", str(exc))
            raise
        except BaseException:  # the consumer went away (GeneratorExit) or the process is stopping
            self.store.finish_comparison_run(run_id, "stopped", "stopped before it finished")
            raise
        status = "stopped" if stop.is_set() else "completed"
        self.store.finish_comparison_run(run_id, status)
        yield RunFinished(run_id, status)

    def _judge_answers(
        self, prepared: Prepared, run_id: int, judge: Judge, stop: threading.Event
    ) -> Iterator[Event]:
        """Grade every stored answer that has no judgement yet (pairwise: every configuration
        but the reference, against the reference's answer on the same example)."""
        run = self.store.get_comparison_run(run_id)
        assert run is not None
        positions = {cfg.id: cfg.position for cfg in run.configs}
        reference = prepared.config.reference - 1
        results = self.store.comparison_results(run_id)
        references = {r.example_index: r for r in results if positions[r.config_id] == reference}
        todo = [
            r
            for r in results
            if r.judgement is None
            and (judge.mode == "pointwise" or positions[r.config_id] != reference)
        ]
        if not todo:
            return
        backend = self.backends.open(judge.model)
        rows = prepared.evaluation.rows
        jobs = judge_jobs(judge, rows, todo, references, backend.prompt_format)
        yield JudgeStarted(len(jobs))
        batch_rows = prepared.config.batch_rows
        for done, (job, judgement) in enumerate(grade(judge, backend, jobs, batch_rows, stop), 1):
            assert job.result.id is not None
            self.store.set_result_judgement(job.result.id, judgement)
            position = positions[job.result.config_id]
            yield RowJudged(position, job.result.example_index, judgement, done, len(jobs))

    def _create(self, prepared: Prepared, judge: Judge | None) -> tuple[int, dict[int, int]]:
        versions = {
            t.name: self.store.save_template_version(t.name, t.to_yaml(), t.content_hash())
            for t in prepared.templates
        }
        judged = None
        if judge is not None:
            t = judge.template
            version = self.store.save_template_version(t.name, t.to_yaml(), t.content_hash())
            judged = {
                "model": judge.model,
                "template": t.name,
                "template_version_id": version.id,
                "version": version.version,
                "mode": judge.mode,
                "scoring": judge.scoring,
            }
        data = _register(self.store, prepared.evaluation_source)
        pool = _register(self.store, prepared.pool) if prepared.pool is not None else None
        specs = [
            ComparisonConfigSpec(
                model_spec=cell.model,
                template_version_id=versions[cell.template.name].id,
                shots=cell.shots,
                seed=cell.seed,
                selection=prepared.config.selection,
                label=cell.label,
            )
            for cell in prepared.cells
        ]
        run = self.store.create_comparison_run(
            name=prepared.config.name,
            scoring=prepared.config.scoring,
            config=prepared.config.model_dump(mode="json"),
            dataset_id=data.id,
            shot_pool_id=pool.id if pool else None,
            n_examples=len(prepared.evaluation),
            configs=specs,
            host=socket.gethostname(),
            pid=os.getpid(),
            judge=judged,
        )
        return run.id, {c.position: c.id for c in run.configs}

    def _run_cell(
        self,
        prepared: Prepared,
        cell: GridCell,
        config_id: int,
        stop: threading.Event,
        skip: set[int],
    ) -> Iterator[ComparisonResult]:
        backend = self.backends.open(cell.model, prepared.config.quantization)
        if prepared.config.calibrate and self.store.config_calibration(config_id) is None:
            # Once per configuration, before its rows (a resumed run keeps the stored prior).
            calibration = content_free_calibration(prepared, cell, backend, stop)
            if calibration is not None:
                self.store.set_config_calibration(config_id, calibration)
        yield from score_cell(prepared, cell, config_id, backend, stop, skip)


def _register(store: Store, dataset: Any) -> Any:
    return store.register_dataset(
        dataset.name,
        dataset.path,
        dataset.format,
        dataset.content_hash,
        len(dataset),
        dataset.columns,
    )


def process_alive(host: str | None, pid: int | None) -> bool:
    """Whether the process that started a run still runs (only knowable on this host)."""
    if pid is None or host != socket.gethostname():
        return host != socket.gethostname() and host is not None
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
