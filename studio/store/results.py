"""Results of comparison runs, persisted one row per scored example.

Owns adding a result in its own transaction (so a crash loses at most the example being scored),
reading a run's results back in table order, and the example indices a config already has, from
which an interrupted run resumes.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from studio.store.base import StoreBase, rowcount
from studio.store.checks import check_result
from studio.store.records import ComparisonResult
from studio.store.rows import result_row
from studio.store.schema import ComparisonConfigRow, ComparisonResultRow, utcnow


class ResultsMixin(StoreBase):
    """Add comparison results row by row and read them back."""

    def add_comparison_result(self, result: ComparisonResult) -> int:
        """Save one result in its own transaction; returns the new id.

        A second result for the same (config_id, example_index), or an unknown config_id,
        raises ValueError and stores nothing.
        """
        check_result(result)
        row = result_row(result, result.created_at or utcnow())
        action = f"save result {result.example_index} of comparison config {result.config_id}"
        with self._session(action, write=True) as session:
            try:
                with session.begin_nested():
                    session.add(row)
            except IntegrityError:
                mistake = _callers_mistake(session, result)
                if mistake is None:
                    raise
                raise ValueError(mistake) from None
            return row.id

    def comparison_results(
        self, run_id: int, config_id: int | None = None
    ) -> list[ComparisonResult]:
        """A run's results (only `config_id`'s if given), by config position then example."""
        stmt = (
            select(ComparisonResultRow)
            .join(ComparisonConfigRow, ComparisonResultRow.config_id == ComparisonConfigRow.id)
            .where(ComparisonConfigRow.run_id == run_id)
            .order_by(ComparisonConfigRow.position, ComparisonResultRow.example_index)
        )
        if config_id is not None:
            stmt = stmt.where(ComparisonResultRow.config_id == config_id)
        with self._session(f"read the results of comparison run {run_id}") as session:
            return [to_result(row) for row in session.scalars(stmt)]

    def set_result_judgement(self, result_id: int, judgement: dict[str, Any]) -> None:
        """Keep a judge's grading of a stored result (judged after its answer was stored)."""
        stmt = (
            update(ComparisonResultRow)
            .where(ComparisonResultRow.id == result_id)
            .values(judgement=json.loads(json.dumps(judgement)))
        )
        with self._session(f"save the judgement of result {result_id}", write=True) as session:
            if rowcount(session.execute(stmt)) == 0:
                raise ValueError(f"no comparison result with id {result_id}")

    def done_indices(self, config_id: int) -> set[int]:
        """The example indices config `config_id` already has a result for."""
        stmt = select(ComparisonResultRow.example_index).where(
            ComparisonResultRow.config_id == config_id
        )
        with self._session(f"read the progress of comparison config {config_id}") as session:
            return set(session.scalars(stmt))


def to_result(row: ComparisonResultRow) -> ComparisonResult:
    return ComparisonResult(
        id=row.id,
        created_at=row.created_at,
        config_id=row.config_id,
        example_index=row.example_index,
        prompt_text=row.prompt_text,
        gold=row.gold,
        prediction=row.prediction,
        correct=row.correct,
        correct_norm=row.correct_norm,
        choice_scores=row.choice_scores,
        output=row.output,
        score=row.score,
        latency_ms=row.latency_ms,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        samples=row.samples,
        judgement=row.judgement,
    )


def _callers_mistake(session: Session, result: ComparisonResult) -> str | None:
    """Why the database refused `result`, when that was the caller's mistake."""
    if session.get(ComparisonConfigRow, result.config_id) is None:
        return f"no comparison config with id {result.config_id}"
    duplicate = select(ComparisonResultRow.id).where(
        ComparisonResultRow.config_id == result.config_id,
        ComparisonResultRow.example_index == result.example_index,
    )
    if session.scalar(duplicate) is not None:
        return (
            f"comparison config {result.config_id} already has a result for example "
            f"{result.example_index}"
        )
    return None
