"""Row and record converters and lookup queries that several areas of the store share.

Owns the pieces more than one feature mixin needs: turning dataset rows into DatasetRecord
values, building result, metric point and run tag rows from what callers pass in, finding
datasets by content hash and template versions by template name and content hash, and which
ORM tables hold each kind of run and its tags. Each area keeps the converters only it uses.
Everything here works inside a session its caller opened; nothing here opens one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from studio.store.records import ComparisonResult, DatasetRecord, MetricPoint
from studio.store.schema import (
    ComparisonResultRow,
    ComparisonRunRow,
    ComparisonRunTagRow,
    DatasetRow,
    MetricPointRow,
    PromptTemplateRow,
    TemplateVersionRow,
    TuningRunRow,
    TuningRunTagRow,
    utcnow,
)

# The table of each kind of run (see studio.store.experiments.RUN_KINDS) and of its tags.
RUN_ROWS: dict[str, Any] = {"comparison": ComparisonRunRow, "tuning": TuningRunRow}
TAG_ROWS: dict[str, Any] = {"comparison": ComparisonRunTagRow, "tuning": TuningRunTagRow}
TAG_KEYS = {"comparison": "comparison_run_id", "tuning": "tuning_run_id"}


def to_dataset(row: DatasetRow) -> DatasetRecord:
    """The DatasetRecord of a dataset row."""
    return DatasetRecord(
        id=row.id,
        name=row.name,
        path=row.path,
        format=row.format,
        content_hash=row.content_hash,
        n_rows=row.n_rows,
        columns=list(row.columns),
        created_at=row.created_at,
    )


def result_row(result: ComparisonResult, when: datetime) -> ComparisonResultRow:
    """A new row for `result` (its id is ignored), created at `when`."""
    return ComparisonResultRow(
        config_id=result.config_id,
        example_index=result.example_index,
        prompt_text=result.prompt_text,
        gold=result.gold,
        prediction=result.prediction,
        correct=result.correct,
        correct_norm=result.correct_norm,
        choice_scores=result.choice_scores,
        output=result.output,
        score=result.score,
        latency_ms=result.latency_ms,
        prompt_tokens=result.prompt_tokens,
        completion_tokens=result.completion_tokens,
        samples=result.samples,
        judgement=result.judgement,
        created_at=when,
    )


def point_row(run_id: int, point: MetricPoint) -> MetricPointRow:
    """A new metric point row of tuning run `run_id`, created now unless `point` says when."""
    return MetricPointRow(
        tuning_run_id=run_id,
        step=point.step,
        epoch=point.epoch,
        loss=point.loss,
        eval_loss=point.eval_loss,
        learning_rate=point.learning_rate,
        grad_norm=point.grad_norm,
        tokens_per_second=point.tokens_per_second,
        eta_seconds=point.eta_seconds,
        created_at=point.created_at or utcnow(),
    )


def tag_row(kind: str, run_id: int, tag: str) -> Any:
    """A new tag row putting `tag` (already cleaned) on run `run_id` of `kind`."""
    return TAG_ROWS[kind](**{TAG_KEYS[kind]: run_id, "tag": tag, "created_at": utcnow()})


def dataset_by_hash(session: Session, content_hash: str) -> DatasetRow | None:
    """The dataset registered with `content_hash`, if any."""
    stmt = select(DatasetRow).where(DatasetRow.content_hash == content_hash)
    return session.scalars(stmt).one_or_none()


def template_by_name(session: Session, name: str) -> PromptTemplateRow | None:
    """The prompt template called `name`, if any."""
    stmt = select(PromptTemplateRow).where(PromptTemplateRow.name == name)
    return session.scalars(stmt).one_or_none()


def version_by_hash(
    session: Session, template_id: int, content_hash: str
) -> TemplateVersionRow | None:
    """The version of template `template_id` whose content has `content_hash`, if any."""
    stmt = select(TemplateVersionRow).where(
        TemplateVersionRow.template_id == template_id,
        TemplateVersionRow.content_hash == content_hash,
    )
    return session.scalars(stmt).one_or_none()


def newest_version(session: Session, template_id: int) -> int:
    """The highest version number of template `template_id`; 0 when it has none."""
    stmt = select(func.max(TemplateVersionRow.version)).where(
        TemplateVersionRow.template_id == template_id
    )
    return session.scalar(stmt) or 0
