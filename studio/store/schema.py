"""ORM tables of the experiment store.

Owns the table layout; nothing outside studio.store sees these classes. Every change here needs a
matching migration in migrations/versions. Naming scheme, kept by the tables later migrations add
(tuning_runs, metric_points, adapters, comparison_run_tags, tuning_run_tags):

- tables are plural snake_case; the primary key is an integer ``id``;
- a foreign key is ``<singular>_id`` (``model_id``, ``tuning_run_id``);
- timestamps end in ``_at`` and are timezone-aware UTC (``UTCDateTime``);
- open-ended settings and metrics are ``JSON`` dicts;
- constraint and index names come from ``NAMING_CONVENTION`` so migrations are deterministic
  (a unique constraint is named after all its columns).

Only portable types are used, so the same schema runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SPEC_LENGTH = 512
CONVERSATION_ID_LENGTH = 36
VOCABULARY_LENGTH = 16
HASH_LENGTH = 64
TEMPLATE_NAME_LENGTH = 64
NAME_LENGTH = 256
LABEL_LENGTH = 1024
TAG_LENGTH = 64


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
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)  # None: not reported (served)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    latency_ms: Mapped[float] = mapped_column(Float)
    first_token_ms: Mapped[float | None] = mapped_column(Float)
    finish_reason: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)

    model: Mapped[ModelRow] = relationship(lazy="joined", innerjoin=True)


class PromptTemplateRow(Base):
    """A named prompt template; its content lives in its versions."""

    __tablename__ = "prompt_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(TEMPLATE_NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TemplateVersionRow(Base):
    """One saved content of a template (its YAML), numbered from 1 per template."""

    __tablename__ = "template_versions"
    __table_args__ = (
        UniqueConstraint("template_id", "content_hash"),
        UniqueConstraint("template_id", "version"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("prompt_templates.id", ondelete="RESTRICT"))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    content: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    template: Mapped[PromptTemplateRow] = relationship(lazy="joined", innerjoin=True)


class DatasetRow(Base):
    """A dataset file the studio has read, identified by the hash of its content."""

    __tablename__ = "datasets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    path: Mapped[str | None] = mapped_column(Text)
    format: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    content_hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)
    n_rows: Mapped[int] = mapped_column(Integer)
    columns: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DatasetVersionRow(Base):
    """A dataset the studio wrote (pairs from a run, synthetic data), by name and version."""

    __tablename__ = "dataset_versions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(TEMPLATE_NAME_LENGTH))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    # How it was made: the source run and rule of a pairs set; generator, seeds, filters of a
    # synthetic set; the version it was edited from after a review.
    lineage: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    dataset: Mapped[DatasetRow] = relationship(lazy="joined", innerjoin=True)


class ComparisonRunRow(Base):
    """One zero/few-shot comparison: several configs scored on the same dataset examples."""

    __tablename__ = "comparison_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    scoring: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    dataset_id: Mapped[int] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    shot_pool_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    n_examples: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    pid: Mapped[int | None] = mapped_column(Integer)
    display_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    note: Mapped[str | None] = mapped_column(Text)
    # A judged run: the judge model, its template version, mode (pointwise | pairwise), scoring.
    judge: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    dataset: Mapped[DatasetRow] = relationship(
        foreign_keys=[dataset_id], lazy="joined", innerjoin=True
    )
    shot_pool: Mapped[DatasetRow | None] = relationship(foreign_keys=[shot_pool_id], lazy="joined")
    configs: Mapped[list[ComparisonConfigRow]] = relationship(
        lazy="selectin", order_by="ComparisonConfigRow.position", passive_deletes=True
    )


class ComparisonConfigRow(Base):
    """One column of a comparison: a model, a template version, shots, seed and selection."""

    __tablename__ = "comparison_configs"
    __table_args__ = (UniqueConstraint("run_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("comparison_runs.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    model_spec: Mapped[str] = mapped_column(String(SPEC_LENGTH))
    template_version_id: Mapped[int] = mapped_column(
        ForeignKey("template_versions.id", ondelete="RESTRICT"), index=True
    )
    shots: Mapped[int] = mapped_column(Integer)
    seed: Mapped[int] = mapped_column(Integer)
    selection: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH))
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH))
    # Contextual calibration (log-likelihood runs that ask for it): the content-free inputs, their
    # exact prompts, each one's log-probability per choice, and the prior they average to.
    calibration: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))

    template_version: Mapped[TemplateVersionRow] = relationship(lazy="joined", innerjoin=True)


class ComparisonResultRow(Base):
    """One scored example of one config: the exact prompt, the gold answer and the outcome."""

    __tablename__ = "comparison_results"
    __table_args__ = (UniqueConstraint("config_id", "example_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    config_id: Mapped[int] = mapped_column(
        ForeignKey("comparison_configs.id", ondelete="CASCADE"), index=True
    )
    example_index: Mapped[int] = mapped_column(Integer)
    prompt_text: Mapped[str] = mapped_column(Text)
    gold: Mapped[str] = mapped_column(Text)
    prediction: Mapped[str | None] = mapped_column(Text)
    correct: Mapped[bool] = mapped_column(Boolean)
    correct_norm: Mapped[bool | None] = mapped_column(Boolean)
    choice_scores: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    output: Mapped[str | None] = mapped_column(Text)
    score: Mapped[float | None] = mapped_column(Float)
    latency_ms: Mapped[float] = mapped_column(Float)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer)
    completion_tokens: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Repeated sampling: every sample's text, verdict, score and seed (output holds sample 1).
    samples: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON(none_as_null=True))
    # A judge's grading of this answer: exact judge prompts, per-verdict scores, the verdict.
    judgement: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))


class TuningRunRow(Base):
    """One LoRA/QLoRA training job: queued, then run by its own worker process."""

    __tablename__ = "tuning_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(VOCABULARY_LENGTH), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    base_model: Mapped[str] = mapped_column(String(SPEC_LENGTH))
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    template_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("template_versions.id", ondelete="RESTRICT"), index=True
    )
    work_dir: Mapped[str] = mapped_column(Text)
    adapter_path: Mapped[str] = mapped_column(Text)
    progress: Mapped[dict[str, Any]] = mapped_column(JSON)
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    stop_requested: Mapped[bool] = mapped_column(Boolean)
    resume: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error: Mapped[str | None] = mapped_column(Text)
    host: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    pid: Mapped[int | None] = mapped_column(Integer)
    display_name: Mapped[str | None] = mapped_column(String(NAME_LENGTH))
    note: Mapped[str | None] = mapped_column(Text)


class MetricPointRow(Base):
    """One logged training step (or evaluation) of a tuning run."""

    __tablename__ = "metric_points"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tuning_run_id: Mapped[int] = mapped_column(
        ForeignKey("tuning_runs.id", ondelete="CASCADE"), index=True
    )
    step: Mapped[int] = mapped_column(Integer)
    epoch: Mapped[float | None] = mapped_column(Float)
    loss: Mapped[float | None] = mapped_column(Float)
    eval_loss: Mapped[float | None] = mapped_column(Float)
    learning_rate: Mapped[float | None] = mapped_column(Float)
    grad_norm: Mapped[float | None] = mapped_column(Float)
    tokens_per_second: Mapped[float | None] = mapped_column(Float)
    eta_seconds: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class AdapterRow(Base):
    """A trained adapter folder and its lineage: base model, data, template version, run."""

    __tablename__ = "adapters"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    path: Mapped[str] = mapped_column(String(SPEC_LENGTH), unique=True)
    base_model: Mapped[str] = mapped_column(String(SPEC_LENGTH))
    tuning_run_id: Mapped[int | None] = mapped_column(
        ForeignKey("tuning_runs.id", ondelete="SET NULL"), index=True
    )
    dataset_id: Mapped[int | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="RESTRICT"), index=True
    )
    template_version_id: Mapped[int | None] = mapped_column(
        ForeignKey("template_versions.id", ondelete="RESTRICT"), index=True
    )
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class ComparisonRunTagRow(Base):
    """A tag on a comparison run (Experiments tab); goes with its run."""

    __tablename__ = "comparison_run_tags"
    __table_args__ = (UniqueConstraint("comparison_run_id", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comparison_run_id: Mapped[int] = mapped_column(
        ForeignKey("comparison_runs.id", ondelete="CASCADE")
    )
    tag: Mapped[str] = mapped_column(String(TAG_LENGTH), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class TuningRunTagRow(Base):
    """A tag on a tuning run (Experiments tab); goes with its run."""

    __tablename__ = "tuning_run_tags"
    __table_args__ = (UniqueConstraint("tuning_run_id", "tag"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tuning_run_id: Mapped[int] = mapped_column(ForeignKey("tuning_runs.id", ondelete="CASCADE"))
    tag: Mapped[str] = mapped_column(String(TAG_LENGTH), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
