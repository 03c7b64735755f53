"""Playground exchanges and the models they used: the Store's first feature.

Owns logging exchanges, upserting the model row each is filed under, and reading history back
as ExchangeRecord, ExchangeSummary and ModelUse values.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from studio.store.base import StoreBase
from studio.store.records import (
    MODEL_SOURCES,
    PREVIEW_CHARS,
    ExchangeRecord,
    ExchangeSummary,
    ModelUse,
    check_choice,
    check_exchange,
)
from studio.store.schema import ExchangeRow, ModelRow, utcnow


class ExchangesMixin(StoreBase):
    """Log playground exchanges and read them back."""

    def record_model_use(self, spec: str, source: str, resolved_path: str | None = None) -> int:
        """Insert or touch the model row for `spec`; returns its id.

        Updates ``source`` and ``last_used_at``, and ``resolved_path`` when one is given.
        """
        check_choice("source", source, MODEL_SOURCES)
        with self._session(f"record use of model {spec!r}", write=True) as session:
            return _upsert_model(session, spec, source, resolved_path, utcnow())

    def log_exchange(self, record: ExchangeRecord) -> int:
        """Save one exchange and touch its model row, all or nothing; returns the new id."""
        check_exchange(record)
        when = record.created_at or utcnow()
        action = f"log an exchange of conversation {record.conversation_id!r}"
        with self._session(action, write=True) as session:
            model_id = _upsert_model(
                session, record.model_spec, record.model_source, record.model_resolved_path, when
            )
            row = _exchange_row(record, model_id, when)
            session.add(row)
            session.flush()
            return row.id

    def get_exchange(self, exchange_id: int) -> ExchangeRecord | None:
        with self._session(f"read exchange {exchange_id}") as session:
            row = session.get(ExchangeRow, exchange_id)
            return None if row is None else _to_record(row)

    def list_exchanges(
        self, limit: int = 50, search: str | None = None, model_spec: str | None = None
    ) -> list[ExchangeSummary]:
        """Newest first; `search` matches user_message or response, ignoring case."""
        stmt = (
            select(
                ExchangeRow.id,
                ExchangeRow.conversation_id,
                ExchangeRow.turn,
                ExchangeRow.created_at,
                ModelRow.spec.label("model_spec"),
                ExchangeRow.quantization,
                func.substr(ExchangeRow.user_message, 1, PREVIEW_CHARS).label("preview"),
                ExchangeRow.completion_tokens,
                ExchangeRow.latency_ms,
                ExchangeRow.finish_reason,
            )
            .join(ModelRow, ExchangeRow.model_id == ModelRow.id)
            .order_by(ExchangeRow.created_at.desc(), ExchangeRow.id.desc())
            .limit(limit)
        )
        if search:
            stmt = stmt.where(
                or_(
                    ExchangeRow.user_message.icontains(search, autoescape=True),
                    ExchangeRow.response.icontains(search, autoescape=True),
                )
            )
        if model_spec is not None:
            stmt = stmt.where(ModelRow.spec == model_spec)
        with self._session("list exchanges") as session:
            return [ExchangeSummary(**row._asdict()) for row in session.execute(stmt)]

    def conversation(
        self, conversation_id: str, upto_id: int | None = None
    ) -> list[ExchangeRecord]:
        """The turns of a conversation in order; only those with id <= `upto_id` if given."""
        stmt = (
            select(ExchangeRow)
            .where(ExchangeRow.conversation_id == conversation_id)
            .order_by(ExchangeRow.turn, ExchangeRow.id)
        )
        if upto_id is not None:
            stmt = stmt.where(ExchangeRow.id <= upto_id)
        with self._session(f"read conversation {conversation_id!r}") as session:
            return [_to_record(row) for row in session.scalars(stmt)]

    def models_used(self) -> list[ModelUse]:
        """Every model ever recorded, most recently used first, with its exchange count."""
        exchanges = (
            select(func.count(ExchangeRow.id))
            .where(ExchangeRow.model_id == ModelRow.id)
            .scalar_subquery()
        )
        stmt = select(ModelRow, exchanges).order_by(
            ModelRow.last_used_at.desc(), ModelRow.id.desc()
        )
        with self._session("list models used") as session:
            return [_to_model_use(row, count) for row, count in session.execute(stmt)]


def _upsert_model(
    session: Session, spec: str, source: str, resolved_path: str | None, when: datetime
) -> int:
    row = _model_by_spec(session, spec) or _insert_model(session, spec, source, when)
    if row is None:
        # Lost an insert race to another writer (PostgreSQL; SQLite writers are serialized).
        row = _model_by_spec(session, spec)
        assert row is not None
    row.source = source
    if resolved_path is not None:
        row.resolved_path = resolved_path
    row.first_used_at = min(row.first_used_at, when)
    row.last_used_at = max(row.last_used_at, when)
    session.flush()
    return row.id


def _model_by_spec(session: Session, spec: str) -> ModelRow | None:
    return session.scalars(select(ModelRow).where(ModelRow.spec == spec)).one_or_none()


def _insert_model(session: Session, spec: str, source: str, when: datetime) -> ModelRow | None:
    row = ModelRow(spec=spec, source=source, first_used_at=when, last_used_at=when)
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        if _model_by_spec(session, spec) is None:
            raise
        return None
    return row


def _exchange_row(record: ExchangeRecord, model_id: int, when: datetime) -> ExchangeRow:
    return ExchangeRow(
        conversation_id=record.conversation_id,
        turn=record.turn,
        model_id=model_id,
        quantization=record.quantization,
        mode=record.mode,
        system_prompt=record.system_prompt,
        history=record.history,
        user_message=record.user_message,
        prompt_text=record.prompt_text,
        parameters=record.parameters,
        response=record.response,
        prompt_tokens=record.prompt_tokens,
        completion_tokens=record.completion_tokens,
        latency_ms=record.latency_ms,
        first_token_ms=record.first_token_ms,
        finish_reason=record.finish_reason,
        error=record.error,
        created_at=when,
    )


def _to_record(row: ExchangeRow) -> ExchangeRecord:
    return ExchangeRecord(
        id=row.id,
        created_at=row.created_at,
        conversation_id=row.conversation_id,
        turn=row.turn,
        model_spec=row.model.spec,
        model_source=row.model.source,
        model_resolved_path=row.model.resolved_path,
        quantization=row.quantization,
        mode=row.mode,
        system_prompt=row.system_prompt,
        history=row.history,
        user_message=row.user_message,
        prompt_text=row.prompt_text,
        parameters=row.parameters,
        response=row.response,
        prompt_tokens=row.prompt_tokens,
        completion_tokens=row.completion_tokens,
        latency_ms=row.latency_ms,
        first_token_ms=row.first_token_ms,
        finish_reason=row.finish_reason,
        error=row.error,
    )


def _to_model_use(row: ModelRow, exchanges: int) -> ModelUse:
    return ModelUse(
        spec=row.spec,
        source=row.source,
        resolved_path=row.resolved_path,
        first_used_at=row.first_used_at,
        last_used_at=row.last_used_at,
        exchanges=exchanges,
    )
