"""ORM tables of the experiment store.

Owns the table layout; nothing outside studio.store sees these classes. Every change here needs a
matching migration in migrations/versions. Naming scheme, kept by the tables later migrations add
(prompt_templates, prompt_template_versions, datasets, comparison_runs, comparison_results,
tuning_runs, metric_points, adapters):

- tables are plural snake_case; the primary key is an integer ``id``;
- a foreign key is ``<singular>_id`` (``model_id``, ``tuning_run_id``);
- timestamps end in ``_at`` and are timezone-aware UTC (``UTCDateTime``);
- open-ended settings and metrics are ``JSON`` dicts;
- constraint and index names come from ``NAMING_CONVENTION`` so migrations are deterministic.

Only portable types are used, so the same schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SPEC_LENGTH = 512
CONVERSATION_ID_LENGTH = 36
VOCABULARY_LENGTH = 16


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend; SQLite hands them back naive."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass a timezone-aware datetime")
        return value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class ModelRow(Base):
    """A model the user has loaded, keyed by what they typed."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    spec: Mapped[str] = mapped_column(String(SPEC_LENGTH), unique=True)
    source: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    resolved_path: Mapped[str | None] = mapped_column(Text)
    first_used_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ExchangeRow(Base):
    """One playground generation: the exact prompt sent, the settings and the outcome."""

    __tablename__ = "playground_exchanges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[str] = mapped_column(String(CONVERSATION_ID_LENGTH), index=True)
    turn: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"), index=True)
    quantization: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    mode: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    system_prompt: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[dict[str, str]]] = mapped_column(JSON)
    user_message: Mapped[str] = mapped_column(Text)
    prompt_text: Mapped[str] = mapped_column(Text)
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)
    response: Mapped[str] = mapped_column(Text)
    prompt_tokens: Mapped[int] = mapped_column(Integer)
    completion_tokens: Mapped[int] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    first_token_ms: Mapped[float | None] = mapped_column(Float)
    finish_reason: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    model: Mapped[ModelRow] = relationship(lazy="joined", innerjoin=True)
