"""What the Experiments tab needs from the store: annotations, tallies and safe deletes.

Owns the display name, note and tags of comparison and tuning runs, per-config tallies (rows
scored, rows right) for headline metrics, which comparison runs use an adapter, and deleting a
run with its own rows only: template versions, datasets and adapters other runs use are kept,
and the report says what stayed and why. Importing a bundle is in
studio.store.experiments_import; reading a dataset or adapter by id is in studio.store.datasets
and studio.store.tuning.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Any

from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from studio.store.base import StoreBase, rowcount
from studio.store.checks import check_text, clean_tag
from studio.store.records import check_choice
from studio.store.rows import RUN_ROWS, TAG_KEYS, TAG_ROWS, tag_row
from studio.store.schema import (
    NAME_LENGTH,
    AdapterRow,
    ComparisonConfigRow,
    ComparisonResultRow,
    ComparisonRunRow,
    DatasetRow,
    MetricPointRow,
    TemplateVersionRow,
    TuningRunRow,
)

RUN_KINDS = ("comparison", "tuning")
NOTE_LENGTH = 20_000
ACTIVE_STATUSES = ("running", "queued")


@dataclass(frozen=True)
class RunAnnotations:
    """What a user added to a run: a display name, a note and tags (sorted)."""

    display_name: str | None = None
    note: str | None = None
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class ConfigTally:
    """How many examples one comparison config has scored and how many it got right."""

    config_id: int
    n: int
    n_correct: int


@dataclass(frozen=True)
class DeleteReport:
    """What a delete removed (counts by kind of row) and what it kept, each with the reason."""

    kind: str
    run_id: int
    removed: dict[str, int] = field(default_factory=dict)
    kept: list[str] = field(default_factory=list)


class ExperimentsMixin(StoreBase):
    """Annotate, tally and delete runs for the Experiments tab."""

    def run_annotations(
        self, kind: str, run_ids: Iterable[int] | None = None
    ) -> dict[int, RunAnnotations]:
        """Annotations of every run of `kind` (or only `run_ids`), keyed by run id."""
        check_choice("kind", kind, RUN_KINDS)
        run_rows, tag_rows = RUN_ROWS[kind], TAG_ROWS[kind]
        key = getattr(tag_rows, TAG_KEYS[kind])
        runs = select(run_rows.id, run_rows.display_name, run_rows.note)
        tags = select(key, tag_rows.tag).order_by(tag_rows.tag)
        if run_ids is not None:
            wanted = sorted(set(run_ids))
            runs, tags = runs.where(run_rows.id.in_(wanted)), tags.where(key.in_(wanted))
        with self._session(f"read annotations of {kind} runs") as session:
            found = {run_id: (name, note) for run_id, name, note in session.execute(runs)}
            by_run: dict[int, list[str]] = {}
            for run_id, tag in session.execute(tags):
                by_run.setdefault(run_id, []).append(tag)
        return {
            run_id: RunAnnotations(name, note, tuple(by_run.get(run_id, ())))
            for run_id, (name, note) in found.items()
        }

    def rename_run(self, kind: str, run_id: int, display_name: str | None) -> None:
        """Set (or with None / blank, clear) the name the studio shows for a run."""
        name = (display_name or "").strip() or None
        check_text("display name", name, NAME_LENGTH, optional=True)
        self._set_run_field(kind, run_id, "display_name", name, "rename")

    def annotate_run(self, kind: str, run_id: int, note: str | None) -> None:
        """Set (or with None / blank, clear) a run's free-text note."""
        text = (note or "").strip() or None
        check_text("note", text, NOTE_LENGTH, optional=True)
        self._set_run_field(kind, run_id, "note", text, "annotate")

    def tag_run(self, kind: str, run_id: int, tag: str) -> bool:
        """Add `tag` to a run; False when it already had it."""
        check_choice("kind", kind, RUN_KINDS)
        tag = clean_tag(tag)
        tag_rows = TAG_ROWS[kind]
        column = getattr(tag_rows, TAG_KEYS[kind])
        exists = select(tag_rows.id).where(column == run_id, tag_rows.tag == tag)
        with self._session(f"tag {kind} run {run_id}", write=True) as session:
            _require_run(session, kind, run_id)
            if session.scalar(exists) is not None:
                return False
            session.add(tag_row(kind, run_id, tag))
            return True

    def untag_run(self, kind: str, run_id: int, tag: str) -> bool:
        """Remove `tag` from a run; False when it did not have it."""
        check_choice("kind", kind, RUN_KINDS)
        tag = clean_tag(tag)
        tag_rows = TAG_ROWS[kind]
        column = getattr(tag_rows, TAG_KEYS[kind])
        stmt = delete(tag_rows).where(column == run_id, tag_rows.tag == tag)
        with self._session(f"untag {kind} run {run_id}", write=True) as session:
            _require_run(session, kind, run_id)
            return rowcount(session.execute(stmt)) > 0

    def config_tallies(self, run_ids: Sequence[int]) -> dict[int, ConfigTally]:
        """Rows scored and rows right per config of the given comparison runs, by config id."""
        right = func.sum(case((ComparisonResultRow.correct.is_(True), 1), else_=0))
        stmt = (
            select(ComparisonResultRow.config_id, func.count(ComparisonResultRow.id), right)
            .join(ComparisonConfigRow, ComparisonResultRow.config_id == ComparisonConfigRow.id)
            .where(ComparisonConfigRow.run_id.in_(sorted(set(run_ids))))
            .group_by(ComparisonResultRow.config_id)
        )
        with self._session("tally comparison results") as session:
            return {
                config_id: ConfigTally(config_id, int(n), int(k or 0))
                for config_id, n, k in session.execute(stmt)
            }

    def correct_flags(self, config_id: int) -> list[bool]:
        """Whether each scored example of a config was right, in example order."""
        stmt = (
            select(ComparisonResultRow.correct)
            .where(ComparisonResultRow.config_id == config_id)
            .order_by(ComparisonResultRow.example_index)
        )
        with self._session(f"read the verdicts of comparison config {config_id}") as session:
            return [bool(value) for value in session.scalars(stmt)]

    def adapter_users(self, path: str) -> list[int]:
        """Ids of the comparison runs with a config whose model is the adapter at `path`."""
        with self._session("find the runs using an adapter") as session:
            return _adapter_users(session, path)

    def delete_comparison_run(self, run_id: int) -> DeleteReport:
        """Delete a finished comparison run with its configs, results and tags, in one
        transaction. Template versions and datasets are never deleted here."""
        with self._session(f"delete comparison run {run_id}", write=True) as session:
            run = _require_run(session, "comparison", run_id)
            _refuse_active(run, "comparison", run_id)
            versions = {config.template_version_id for config in run.configs}
            results = session.scalar(
                select(func.count(ComparisonResultRow.id))
                .join(ComparisonConfigRow)
                .where(ComparisonConfigRow.run_id == run_id)
            )
            removed = {"configs": len(run.configs), "results": int(results or 0)}
            removed["tags"] = _delete_tags(session, "comparison", run_id)
            kept = [
                _version_kept(session, version_id, run_id, None) for version_id in sorted(versions)
            ]
            kept.append(_dataset_kept(session, run.dataset_id))
            session.execute(delete(ComparisonResultRow).where(
                ComparisonResultRow.config_id.in_(c.id for c in run.configs)
            ))  # fmt: skip
            session.execute(delete(ComparisonConfigRow).where(ComparisonConfigRow.run_id == run_id))
            session.execute(delete(ComparisonRunRow).where(ComparisonRunRow.id == run_id))
            return DeleteReport("comparison", run_id, removed, kept)

    def delete_tuning_run(self, run_id: int) -> DeleteReport:
        """Delete a finished tuning run with its metric points and tags. Its adapter record
        goes too unless a comparison run uses the adapter; adapter folders stay on disk."""
        with self._session(f"delete tuning run {run_id}", write=True) as session:
            run = _require_run(session, "tuning", run_id)
            _refuse_active(run, "tuning", run_id)
            points = delete(MetricPointRow).where(MetricPointRow.tuning_run_id == run_id)
            removed = {"metric points": rowcount(session.execute(points))}
            removed["tags"] = _delete_tags(session, "tuning", run_id)
            kept: list[str] = []
            adapters = session.scalars(select(AdapterRow).where(AdapterRow.tuning_run_id == run_id))
            removed["adapter records"] = 0
            for adapter in list(adapters):
                users = _adapter_users(session, adapter.path)
                if users:
                    kept.append(
                        f"adapter {adapter.name} (record kept: comparison run(s) "
                        f"{_refs('c', users)} use it)"
                    )
                    adapter.tuning_run_id = None
                else:
                    session.delete(adapter)
                    removed["adapter records"] += 1
                kept.append(
                    f"adapter folder {adapter.path} (files are never deleted by the studio)"
                )
            if run.template_version_id is not None:
                kept.append(_version_kept(session, run.template_version_id, None, run_id))
            if run.dataset_id is not None:
                kept.append(_dataset_kept(session, run.dataset_id))
            session.flush()
            session.execute(delete(TuningRunRow).where(TuningRunRow.id == run_id))
            return DeleteReport("tuning", run_id, removed, kept)

    def delete_adapter_record(self, adapter_id: int) -> DeleteReport:
        """Forget an adapter no comparison run uses (its folder stays on disk)."""
        with self._session(f"delete adapter {adapter_id}", write=True) as session:
            adapter = session.get(AdapterRow, adapter_id)
            if adapter is None:
                raise ValueError(f"no adapter with id a{adapter_id}")
            users = _adapter_users(session, adapter.path)
            if users:
                raise ValueError(
                    f"adapter {adapter.name} is used by comparison run(s) {_refs('c', users)}; "
                    "delete those runs first (the adapter is what their results were scored with)"
                )
            session.delete(adapter)
            kept = [f"adapter folder {adapter.path} (files are never deleted by the studio)"]
            return DeleteReport("adapter", adapter_id, {"adapter records": 1}, kept)

    def _set_run_field(
        self, kind: str, run_id: int, name: str, value: str | None, verb: str
    ) -> None:
        check_choice("kind", kind, RUN_KINDS)
        with self._session(f"{verb} {kind} run {run_id}", write=True) as session:
            setattr(_require_run(session, kind, run_id), name, value)


def _require_run(session: Session, kind: str, run_id: int) -> Any:
    check_choice("kind", kind, RUN_KINDS)
    row = session.get(RUN_ROWS[kind], run_id)
    if row is None:
        raise ValueError(f"no {kind} run with id {kind[0]}{run_id}")
    return row


def _refuse_active(run: Any, kind: str, run_id: int) -> None:
    if run.status in ACTIVE_STATUSES:
        raise ValueError(
            f"{kind} run {kind[0]}{run_id} is {run.status}; stop it first, then delete it"
        )


def _delete_tags(session: Session, kind: str, run_id: int) -> int:
    tag_rows = TAG_ROWS[kind]
    stmt = delete(tag_rows).where(getattr(tag_rows, TAG_KEYS[kind]) == run_id)
    return rowcount(session.execute(stmt))


def _refs(prefix: str, ids: Iterable[int]) -> str:
    return ", ".join(f"{prefix}{i}" for i in sorted(set(ids)))


def _version_kept(
    session: Session, version_id: int, comparison_id: int | None, tuning_id: int | None
) -> str:
    """Why a template version stays: who else uses it, or that versions are library history."""
    version = session.get(TemplateVersionRow, version_id)
    label = f"template {version.template.name}@v{version.version}" if version else "template"
    comparisons = session.scalars(
        select(ComparisonConfigRow.run_id).where(
            ComparisonConfigRow.template_version_id == version_id,
            ComparisonConfigRow.run_id != (comparison_id or -1),
        )
    ).all()
    tunings = session.scalars(
        select(TuningRunRow.id).where(
            TuningRunRow.template_version_id == version_id, TuningRunRow.id != (tuning_id or -1)
        )
    ).all()
    users = [part for part in (_refs("c", comparisons), _refs("t", tunings)) if part]
    if users:
        return f"{label} (used by run(s) {', '.join(users)})"
    return f"{label} (saved versions are the prompt library's history; manage them in Prompts)"


def _dataset_kept(session: Session, dataset_id: int) -> str:
    dataset = session.get(DatasetRow, dataset_id)
    name = dataset.name if dataset else f"#{dataset_id}"
    return f"dataset {name} (a dataset record is shared by every run on the same content)"


def _adapter_users(session: Session, path: str) -> list[int]:
    """Comparison runs whose config model spec names the adapter folder `path`."""
    name = PurePath(path).name
    names = {path, path.rstrip("/"), f"adapter:{name}", f"adapters/{name}", f"adapters/{name}/"}
    stmt = select(ComparisonConfigRow.run_id, ComparisonConfigRow.model_spec).distinct()
    return sorted(
        {
            run_id
            for run_id, spec in session.execute(stmt)
            if spec in names or (spec.rstrip("/").endswith(f"/{name}") and "adapter" in spec)
        }
    )
