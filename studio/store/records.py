"""Values that cross the store's boundary.

Owns the frozen dataclasses callers pass in and get back (they never see ORM rows) and the
vocabularies of the short string fields, checked before anything is written (the checks of
templates, datasets and comparisons are in studio.store.checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

MODEL_SOURCES = ("bundled", "hub", "local", "gguf", "adapter", "served")
QUANTIZATIONS = ("none", "8bit", "4bit")
MODES = ("chat", "completion")
FINISH_REASONS = ("eos", "length", "stop_string", "stopped", "error")
PREVIEW_CHARS = 80
RUN_STATUSES = ("running", "completed", "stopped", "interrupted", "failed")
FINISHED_STATUSES = ("completed", "stopped", "interrupted", "failed")
SCORINGS = ("loglik", "generate")
SELECTIONS = ("first", "random", "balanced", "similar")


@dataclass(frozen=True, kw_only=True)
class ExchangeRecord:
    """One playground exchange, as logged and as read back.

    ``history`` holds the ``{"role", "content"}`` messages before this turn, ``prompt_text`` the
    exact string sent to the model after the chat template, and ``parameters`` the generation
    settings (temperature, top_p, top_k, max_new_tokens, repetition_penalty, stop, seed, ...).
    ``model_source`` and ``model_resolved_path`` describe the model row the exchange is filed
    under; read back, they are that row's current values. ``id`` is set by the store, and
    ``created_at`` defaults to the time of logging.
    """

    conversation_id: str
    turn: int
    model_spec: str
    model_source: str
    quantization: str
    mode: str
    user_message: str
    prompt_text: str
    response: str
    prompt_tokens: int | None  # None: the (served) model did not report it
    completion_tokens: int | None
    latency_ms: float
    finish_reason: str
    system_prompt: str | None = None
    history: list[dict[str, str]] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)
    first_token_ms: float | None = None
    error: str | None = None
    model_resolved_path: str | None = None
    id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ExchangeSummary:
    """One row of the history list; ``preview`` is the first 80 characters of the message."""

    id: int
    conversation_id: str
    turn: int
    created_at: datetime
    model_spec: str
    quantization: str
    preview: str
    completion_tokens: int | None
    latency_ms: float
    finish_reason: str


@dataclass(frozen=True)
class ModelUse:
    """A model the user has loaded and how many exchanges were logged with it."""

    spec: str
    source: str
    resolved_path: str | None
    first_used_at: datetime
    last_used_at: datetime
    exchanges: int


@dataclass(frozen=True)
class TemplateVersion:
    """One saved content of a prompt template; ``used_by_runs`` counts the runs using it."""

    id: int
    template_name: str
    version: int
    content_hash: str
    content: str
    created_at: datetime
    used_by_runs: int


@dataclass(frozen=True)
class DatasetRecord:
    """A dataset file as registered; ``columns`` are its column names in file order."""

    id: int
    name: str
    path: str | None
    format: str
    content_hash: str
    n_rows: int
    columns: list[str]
    created_at: datetime


@dataclass(frozen=True)
class DatasetVersion:
    """A dataset the studio wrote, by name and version, with how it was made."""

    id: int
    name: str
    version: int
    kind: str  # pairs | synthetic
    dataset: DatasetRecord
    lineage: dict[str, Any]
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@v{self.version}"


@dataclass(frozen=True, kw_only=True)
class ComparisonConfigSpec:
    """One config of a comparison run to create; ``selection`` picks the few-shot examples."""

    model_spec: str
    template_version_id: int
    shots: int
    seed: int
    selection: str
    label: str


@dataclass(frozen=True)
class ComparisonConfig:
    """One stored config of a run, at ``position`` (0-based, in the order given)."""

    id: int
    run_id: int
    position: int
    model_spec: str
    template_version_id: int
    template_name: str
    template_version: int
    shots: int
    seed: int
    selection: str
    label: str
    calibration: dict[str, Any] | None = None  # contextual calibration: inputs, prompts, prior


@dataclass(frozen=True, kw_only=True)
class ComparisonResult:
    """One scored example of one config, as logged and as read back.

    For loglik scoring ``correct_norm`` is the length-normalised verdict (acc_norm) and
    ``choice_scores`` holds ``{"choice", "logprob", "length"}`` per choice; for generate scoring
    ``output`` is the generated text and ``score`` e.g. token F1. ``id`` is set by the store and
    ``created_at`` defaults to the time of logging.
    """

    config_id: int
    example_index: int
    prompt_text: str
    gold: str
    prediction: str | None
    correct: bool
    latency_ms: float
    prompt_tokens: int | None  # None: the (served) model did not report it
    correct_norm: bool | None = None
    choice_scores: list[dict[str, Any]] | None = None
    output: str | None = None
    score: float | None = None
    completion_tokens: int | None = None
    samples: list[dict[str, Any]] | None = None  # repeated sampling: every sample, sample 1 first
    judgement: dict[str, Any] | None = None  # a judge's grading: prompts, verdict scores, verdict
    id: int | None = None
    created_at: datetime | None = None


@dataclass(frozen=True)
class ComparisonRun:
    """A comparison run with its configs; ``results_done`` counts results over all configs."""

    id: int
    name: str | None
    status: str
    scoring: str
    config: dict[str, Any]
    dataset: DatasetRecord
    shot_pool: DatasetRecord | None
    n_examples: int
    created_at: datetime
    finished_at: datetime | None
    error: str | None
    configs: list[ComparisonConfig]
    results_done: int
    judge: dict[str, Any] | None = None  # judged runs: model, template version, mode, scoring


def check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def check_exchange(record: ExchangeRecord) -> None:
    """Reject vocabulary mistakes before anything is written; the database enforces the rest."""
    check_choice("model_source", record.model_source, MODEL_SOURCES)
    check_choice("quantization", record.quantization, QUANTIZATIONS)
    check_choice("mode", record.mode, MODES)
    check_choice("finish_reason", record.finish_reason, FINISH_REASONS)
    if record.created_at is not None and record.created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware (UTC); got a naive datetime")


TUNING_STATUSES = (
    "queued",
    "running",
    "completed",
    "stopped",
    "failed",
    "interrupted",
    "cancelled",
)
TUNING_FINISHED = ("completed", "stopped", "failed", "interrupted", "cancelled")
TUNING_RESUMABLE = ("stopped", "failed", "interrupted")


@dataclass(frozen=True, kw_only=True)
class TuningRun:
    """A training job. `progress` is the latest step, total steps, ETA and speed; `summary`
    the final metrics once it ends; `work_dir` holds its log, checkpoints and config file."""

    id: int
    name: str
    status: str
    config: dict[str, Any]
    base_model: str
    dataset_id: int | None
    template_version_id: int | None
    work_dir: str
    adapter_path: str
    progress: dict[str, Any]
    summary: dict[str, Any] | None
    stop_requested: bool
    resume: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    host: str | None
    pid: int | None

    @property
    def finished(self) -> bool:
        return self.status in TUNING_FINISHED


@dataclass(frozen=True, kw_only=True)
class MetricPoint:
    """One logged training step; eval points carry eval_loss, train points loss."""

    step: int
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None
    created_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class AdapterRecord:
    """A registered adapter folder with its lineage."""

    name: str
    path: str
    base_model: str
    tuning_run_id: int | None = None
    dataset_id: int | None = None
    template_version_id: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    id: int | None = None
    created_at: datetime | None = None
