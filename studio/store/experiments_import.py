"""Importing an experiment bundle into the store: every row in one transaction, ids remapped.

Owns writing what studio.experiments.bundle read and checked: datasets are matched by content
hash and template versions by (template name, content hash), so re-importing adds no duplicates
of them; runs, configs, results, metric points, tags and notes get new ids. Anything wrong raises
ValueError and the transaction writes nothing. Runs that were still active in the studio they
came from arrive interrupted (comparison) or cancelled/interrupted (tuning), never queued, so no
import starts training. The records' paths are stored as given: studio.experiments.bundle has
already put them under this studio's folders. Whatever the caller passes, an imported tuning
config never keeps trust_remote_code on, and no worker host or pid is copied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.store.base import StoreBase
from studio.store.checks import (
    check_config_spec,
    check_dataset,
    check_result,
    check_template,
    check_text,
    clean_tag,
)
from studio.store.experiments import NOTE_LENGTH, RunAnnotations
from studio.store.records import (
    RUN_STATUSES,
    SCORINGS,
    TUNING_STATUSES,
    AdapterRecord,
    ComparisonConfigSpec,
    ComparisonResult,
    ComparisonRun,
    DatasetRecord,
    MetricPoint,
    TemplateVersion,
    TuningRun,
    check_choice,
)
from studio.store.rows import (
    dataset_by_hash,
    newest_version,
    point_row,
    result_row,
    tag_row,
    template_by_name,
    version_by_hash,
)
from studio.store.schema import (
    NAME_LENGTH,
    AdapterRow,
    ComparisonConfigRow,
    ComparisonRunRow,
    DatasetRow,
    PromptTemplateRow,
    TemplateVersionRow,
    TuningRunRow,
    utcnow,
)

IMPORTED_STATUS = {"running": "interrupted", "queued": "cancelled"}


@dataclass(frozen=True, kw_only=True)
class ExperimentBundle:
    """Runs with everything they refer to; ids are the exporting studio's."""

    datasets: list[DatasetRecord] = field(default_factory=list)
    template_versions: list[TemplateVersion] = field(default_factory=list)
    comparison_runs: list[ComparisonRun] = field(default_factory=list)
    comparison_results: list[ComparisonResult] = field(default_factory=list)
    tuning_runs: list[TuningRun] = field(default_factory=list)
    metric_points: dict[int, list[MetricPoint]] = field(default_factory=dict)
    adapters: list[AdapterRecord] = field(default_factory=list)
    annotations: dict[tuple[str, int], RunAnnotations] = field(default_factory=dict)


@dataclass
class ImportReport:
    """Bundle id -> new id per run kind, and how many rows were added or matched."""

    comparison_ids: dict[int, int] = field(default_factory=dict)
    tuning_ids: dict[int, int] = field(default_factory=dict)
    added: dict[str, int] = field(default_factory=dict)
    reused: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what the import changed, per run

    def count(self, what: str, *, reused: bool = False, n: int = 1) -> None:
        target = self.reused if reused else self.added
        target[what] = target.get(what, 0) + n


class ImportMixin(StoreBase):
    """Import experiment bundles."""

    def import_experiments(self, bundle: ExperimentBundle) -> ImportReport:
        """Write `bundle` in one transaction; ValueError (nothing written) if it is inconsistent."""
        report = ImportReport()
        with self._session("import an experiment bundle", write=True) as session:
            datasets = {d.id: _dataset(session, d, report) for d in bundle.datasets}
            versions = {v.id: _version(session, v, report) for v in bundle.template_versions}
            configs: dict[int, int] = {}
            for run in bundle.comparison_runs:
                row = _comparison(session, run, datasets, versions, configs)
                report.comparison_ids[run.id] = row.id
                _annotate(
                    session, "comparison", row, bundle.annotations.get(("comparison", run.id))
                )
            report.count("comparison runs", n=len(bundle.comparison_runs))
            for result in bundle.comparison_results:
                check_result(result)
                if result.config_id not in configs:
                    raise ValueError(
                        f"result {result.example_index} refers to config {result.config_id}, "
                        "which no run in the bundle has"
                    )
                session.add(result_row(
                    _with_config(result, configs[result.config_id]),
                    result.created_at or utcnow(),
                ))  # fmt: skip
            report.count("results", n=len(bundle.comparison_results))
            for tuning in bundle.tuning_runs:
                tuning_row = _tuning(session, tuning, datasets, versions)
                report.tuning_ids[tuning.id] = tuning_row.id
                notes = bundle.annotations.get(("tuning", tuning.id))
                _annotate(session, "tuning", tuning_row, notes)
                points = bundle.metric_points.get(tuning.id, [])
                session.add_all(point_row(tuning_row.id, point) for point in points)
                report.count("metric points", n=len(points))
            report.count("tuning runs", n=len(bundle.tuning_runs))
            for adapter in bundle.adapters:
                _adapter(session, adapter, datasets, versions, report)
            session.flush()
        return report


def _lookup(mapping: dict[int, int], old: int | None, what: str) -> int | None:
    if old is None:
        return None
    if old not in mapping:
        raise ValueError(f"the bundle refers to {what} {old}, which it does not contain")
    return mapping[old]


def _dataset(session: Session, record: DatasetRecord, report: ImportReport) -> int:
    check_dataset(
        record.name, record.path, record.format, record.content_hash, record.n_rows, record.columns
    )
    found = dataset_by_hash(session, record.content_hash)
    if found is not None:
        report.count("datasets", reused=True)
        return found.id
    row = DatasetRow(
        name=record.name,
        path=record.path,
        format=record.format,
        content_hash=record.content_hash,
        n_rows=record.n_rows,
        columns=list(record.columns),
        created_at=record.created_at,
    )
    session.add(row)
    session.flush()
    report.count("datasets")
    return row.id


def _version(session: Session, record: TemplateVersion, report: ImportReport) -> int:
    check_template(record.template_name, record.content, record.content_hash)
    template = template_by_name(session, record.template_name)
    if template is None:
        template = PromptTemplateRow(name=record.template_name, created_at=utcnow())
        session.add(template)
        session.flush()
    found = version_by_hash(session, template.id, record.content_hash)
    if found is not None:
        report.count("template versions", reused=True)
        return found.id
    row = TemplateVersionRow(
        template=template,
        version=newest_version(session, template.id) + 1,
        content_hash=record.content_hash,
        content=record.content,
        created_at=record.created_at,
    )
    session.add(row)
    session.flush()
    report.count("template versions")
    return row.id


def _comparison(
    session: Session,
    run: ComparisonRun,
    datasets: dict[int, int],
    versions: dict[int, int],
    configs: dict[int, int],
) -> ComparisonRunRow:
    check_choice("scoring", run.scoring, SCORINGS)
    check_choice("status", run.status, RUN_STATUSES)
    status = IMPORTED_STATUS.get(run.status, run.status)
    row = ComparisonRunRow(
        name=run.name,
        status=status,
        scoring=run.scoring,
        config=json.loads(json.dumps(run.config, allow_nan=False)),
        dataset_id=_lookup(datasets, run.dataset.id, "dataset"),
        shot_pool_id=_lookup(datasets, run.shot_pool.id if run.shot_pool else None, "dataset"),
        n_examples=run.n_examples,
        created_at=run.created_at,
        finished_at=run.finished_at or (utcnow() if status != run.status else None),
        error=run.error if status == run.status else "imported while it was still running",
        judge=_judge(run.judge, versions),
    )
    session.add(row)
    session.flush()
    for config in run.configs:
        spec = ComparisonConfigSpec(
            model_spec=config.model_spec,
            template_version_id=_lookup(versions, config.template_version_id, "template version")
            or 0,
            shots=config.shots,
            seed=config.seed,
            selection=config.selection,
            label=config.label,
        )
        check_config_spec(spec)
        config_row = ComparisonConfigRow(
            run_id=row.id,
            position=config.position,
            model_spec=spec.model_spec,
            template_version_id=spec.template_version_id,
            shots=spec.shots,
            seed=spec.seed,
            selection=spec.selection,
            label=spec.label,
            calibration=config.calibration,
        )
        session.add(config_row)
        session.flush()
        configs[config.id] = config_row.id
    return row


def _judge(judge: dict[str, Any] | None, versions: dict[int, int]) -> dict[str, Any] | None:
    """A judged run's judge with its template version id mapped to this store's."""
    if judge is None:
        return None
    version = _lookup(versions, judge.get("template_version_id"), "judge template version")
    return {**json.loads(json.dumps(judge, allow_nan=False)), "template_version_id": version}


def _with_config(result: ComparisonResult, config_id: int) -> ComparisonResult:
    return replace(result, config_id=config_id, id=None)


def _tuning(
    session: Session, run: TuningRun, datasets: dict[int, int], versions: dict[int, int]
) -> TuningRunRow:
    check_choice("status", run.status, TUNING_STATUSES)
    status = IMPORTED_STATUS.get(run.status, run.status)
    config = json.loads(json.dumps(run.config, allow_nan=False))
    model = config.get("model") if isinstance(config, dict) else None
    if isinstance(model, dict) and "trust_remote_code" in model:
        model["trust_remote_code"] = False  # the operator's decision, made per launch
    row = TuningRunRow(
        name=run.name,
        status=status,
        config=config,
        base_model=run.base_model,
        dataset_id=_lookup(datasets, run.dataset_id, "dataset"),
        template_version_id=_lookup(versions, run.template_version_id, "template version"),
        work_dir=run.work_dir,
        adapter_path=run.adapter_path,
        progress=json.loads(json.dumps(run.progress, allow_nan=False)),
        summary=None if run.summary is None else json.loads(json.dumps(run.summary)),
        stop_requested=False,
        resume=False,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at or (utcnow() if status != run.status else None),
        error=run.error if status == run.status else f"imported while {run.status}",
    )
    session.add(row)
    session.flush()
    return row


def _adapter(
    session: Session,
    adapter: AdapterRecord,
    datasets: dict[int, int],
    versions: dict[int, int],
    report: ImportReport,
) -> None:
    if session.scalars(select(AdapterRow).where(AdapterRow.path == adapter.path)).first():
        report.count("adapters", reused=True)
        return
    session.add(
        AdapterRow(
            name=adapter.name,
            path=adapter.path,
            base_model=adapter.base_model,
            tuning_run_id=_lookup(report.tuning_ids, adapter.tuning_run_id, "tuning run"),
            dataset_id=_lookup(datasets, adapter.dataset_id, "dataset"),
            template_version_id=_lookup(versions, adapter.template_version_id, "template version"),
            metrics=json.loads(json.dumps(adapter.metrics, allow_nan=False)),
            created_at=adapter.created_at or utcnow(),
        )
    )
    report.count("adapters")


def _annotate(session: Session, kind: str, row: Any, notes: RunAnnotations | None) -> None:
    if notes is None:
        return
    check_text("display name", notes.display_name, NAME_LENGTH, optional=True)
    check_text("note", notes.note, NOTE_LENGTH, optional=True)
    row.display_name, row.note = notes.display_name, notes.note
    for tag in dict.fromkeys(clean_tag(tag) for tag in notes.tags):
        session.add(tag_row(kind, row.id, tag))
