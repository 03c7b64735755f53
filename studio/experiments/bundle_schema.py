"""The typed schema of an experiment bundle: every file, row and field it may hold.

Owns what an imported bundle may contain, checked before anything is written: strict types (a
string is never taken for a number), unknown keys refused, numbers and texts bounded to what the
store's columns hold, and the run configs checked by the same models a launch uses (CompareConfig,
TuneConfig). A row that does not fit is refused with the file, the row and the field path, e.g.
`comparison_runs.json: run 3: config.shots: expected a list of integers, got a string at
config.shots[0]`. Which fields are then neutralised (paths, operator-only switches) is decided in
studio.experiments.bundle.

The files are exactly what `export_bundle` writes: each row is a record of studio.store.records
made plain (dates as ISO strings), comparison runs with dataset_id/shot_pool_id for their
datasets and configs without their template's name and number, tuning runs' metric points with
tuning_run_id, runs with their display_name, note and tags.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from studio.compare.config import CompareConfig
from studio.models.adapters import ADAPTER_NAME
from studio.store.experiments import NOTE_LENGTH
from studio.store.records import RUN_STATUSES, SCORINGS, SELECTIONS, TUNING_STATUSES
from studio.store.schema import (
    HASH_LENGTH,
    LABEL_LENGTH,
    NAME_LENGTH,
    SPEC_LENGTH,
    TAG_LENGTH,
    TEMPLATE_NAME_LENGTH,
    VOCABULARY_LENGTH,
)
from studio.templates import NAME_PATTERN as TEMPLATE_NAME
from studio.tuning.config import TuneConfig

INT32 = 2**31 - 1  # the store's Integer columns (PostgreSQL integer)
PATH_LENGTH = 4096


class BundleError(ValueError):
    """A bundle that cannot be imported; the message names the file, the row and the fix."""


def _moment(value: object) -> datetime:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        raise ValueError("expected an ISO date-time string")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value[:40]!r} is not an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _one_of(allowed: tuple[str, ...]) -> AfterValidator:
    def check(value: str) -> str:
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, not {value[:40]!r}")
        return value

    return AfterValidator(check)


def _matching(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value) or value in (".", ".."):
            raise ValueError(f"{value[:70]!r} is not a valid {what}")
        return value

    return AfterValidator(check)


Moment = Annotated[datetime, BeforeValidator(_moment)]
Id = Annotated[int, Field(ge=0, le=INT32)]
Count = Annotated[int, Field(ge=0, le=INT32)]
Int32 = Annotated[int, Field(ge=-INT32 - 1, le=INT32)]
BigCount = Annotated[int, Field(ge=0, le=2**53)]
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_LENGTH)]
Spec = Annotated[str, StringConstraints(min_length=1, max_length=SPEC_LENGTH)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=LABEL_LENGTH)]
Hash = Annotated[str, StringConstraints(min_length=1, max_length=HASH_LENGTH)]
Vocabulary = Annotated[str, StringConstraints(min_length=1, max_length=VOCABULARY_LENGTH)]
Note = Annotated[str, StringConstraints(max_length=NOTE_LENGTH)]
Tag = Annotated[str, StringConstraints(min_length=1, max_length=TAG_LENGTH)]
PathText = Annotated[str, StringConstraints(max_length=PATH_LENGTH)]
AdapterName = Annotated[str, _matching(ADAPTER_NAME, "adapter name (letters, digits, . _ -)")]
TemplateName = Annotated[
    str,
    StringConstraints(max_length=TEMPLATE_NAME_LENGTH),
    _matching(TEMPLATE_NAME, "template name (lowercase letters, digits, . _ -)"),
]


class _Row(BaseModel):
    """One JSON object of a bundle: strict types, no unknown keys, finite numbers."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class _Annotated(_Row):
    display_name: Name | None = None
    note: Note | None = None
    tags: list[Tag] = Field(default_factory=list)


class Manifest(_Row):
    format: str
    format_version: int
    studio_version: Annotated[str, StringConstraints(max_length=64)]
    created_at: Moment
    runs: list[Annotated[str, StringConstraints(max_length=32)]]
    counts: dict[Annotated[str, StringConstraints(max_length=64)], Count]


class Dataset(_Row):
    id: Id
    name: Name
    path: PathText | None  # the exporter's path: never stored (the file is not in the bundle)
    format: Vocabulary
    content_hash: Hash
    n_rows: Count
    columns: list[Annotated[str, StringConstraints(max_length=LABEL_LENGTH)]]
    created_at: Moment


class TemplateVersion(_Row):
    id: Id
    template_name: TemplateName
    version: Count
    content_hash: Hash
    content: str
    created_at: Moment
    used_by_runs: Count


class Calibration(_Row):
    """A config's contextual calibration: content-free inputs, their prompts, the prior."""

    inputs: Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=16)]
    prompts: Annotated[list[str], Field(max_length=16)]
    logprobs: Annotated[list[list[float]], Field(max_length=16)]
    prior: Annotated[list[Annotated[float, Field(ge=0, le=1)]], Field(min_length=1)]


class Config(_Row):
    """One config (column) of a comparison run."""

    id: Id
    run_id: Id
    position: Count
    model_spec: Spec
    template_version_id: Id
    shots: Annotated[int, Field(ge=0, le=64)]
    seed: Int32
    selection: Annotated[str, _one_of(SELECTIONS)]
    label: Label
    calibration: Calibration | None = None


class ComparisonRun(_Annotated):
    id: Id
    name: Name | None
    status: Annotated[str, _one_of(RUN_STATUSES)]
    scoring: Annotated[str, _one_of(SCORINGS)]
    config: dict[str, Any]  # a CompareConfig: see run_config
    dataset_id: Id
    shot_pool_id: Id | None = None
    n_examples: Count
    created_at: Moment
    finished_at: Moment | None
    error: str | None
    configs: Annotated[list[Config], Field(min_length=1)]
    results_done: Count = 0
    judge: dict[str, Any] | None = None  # judged runs: model, template version, mode, scoring


class ChoiceScore(_Row):
    choice: str
    logprob: float
    length: Count


class Result(_Row):
    config_id: Id
    example_index: Count
    prompt_text: str
    gold: str
    prediction: str | None
    correct: bool
    latency_ms: Annotated[float, Field(ge=0)]
    prompt_tokens: Count | None
    correct_norm: bool | None = None
    choice_scores: list[ChoiceScore] | None = None
    output: str | None = None
    score: float | None = None
    completion_tokens: Count | None = None
    samples: list[dict[str, Any]] | None = None
    judgement: dict[str, Any] | None = None
    id: Id | None = None
    created_at: Moment | None = None


class Progress(_Row):
    """A tuning run's latest step, as its trainer callback records it."""

    step: Count | None = None
    total_steps: Count | None = None
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None
    elapsed_seconds: float | None = None


class Summary(_Row):
    """A finished tuning run's metrics (also an adapter's)."""

    steps: Count | None = None
    epochs: float | None = None
    train_loss: float | None = None
    first_train_loss: float | None = None
    mean_train_loss: float | None = None
    eval_loss: float | None = None
    tokens: BigCount | None = None
    tokens_per_second: float | None = None
    train_seconds: float | None = None
    wall_seconds: float | None = None
    n_train: Count | None = None
    n_eval: Count | None = None
    device: Annotated[str, StringConstraints(max_length=64)] | None = None


class TuningRun(_Annotated):
    id: Id
    name: AdapterName
    status: Annotated[str, _one_of(TUNING_STATUSES)]
    config: dict[str, Any]  # a TuneConfig: see run_config
    base_model: Spec
    dataset_id: Id | None
    template_version_id: Id | None
    work_dir: PathText  # the exporter's folders: never stored
    adapter_path: PathText
    progress: Progress
    summary: Summary | None
    stop_requested: bool
    resume: bool
    created_at: Moment
    started_at: Moment | None
    finished_at: Moment | None
    error: str | None
    host: Name | None = None  # the exporter's worker: never stored
    pid: Count | None = None


class Point(_Row):
    tuning_run_id: Id
    step: Count
    epoch: float | None = None
    loss: float | None = None
    eval_loss: float | None = None
    learning_rate: float | None = None
    grad_norm: float | None = None
    tokens_per_second: float | None = None
    eta_seconds: float | None = None
    created_at: Moment | None = None


class Adapter(_Row):
    name: AdapterName
    path: PathText  # the exporter's folder: never stored
    base_model: Spec
    tuning_run_id: Id | None = None
    dataset_id: Id | None = None
    template_version_id: Id | None = None
    metrics: Summary = Field(default_factory=Summary)
    id: Id | None = None
    created_at: Moment | None = None


def parse_row(model: type[_Row], value: Any, where: str) -> Any:
    """`value` as `model`, or BundleError naming `where` and the field."""
    if not isinstance(value, dict):
        raise BundleError(f"{where}: expected an object, got {_kind(value)}")
    try:
        return model.model_validate(value, strict=True)
    except ValidationError as exc:
        raise BundleError(f"{where}: {describe(exc.errors(include_url=False))}") from None


def run_config(
    model: type[CompareConfig] | type[TuneConfig], value: dict[str, Any], where: str
) -> CompareConfig | TuneConfig | None:
    """A run's stored config checked by the model a launch uses (CompareConfig, TuneConfig):
    a wrong type, a bad value or an unknown key anywhere is refused as `config.<field>`. A
    config lacking settings is let through as it is (None), as the store accepts such configs;
    resuming or re-running that run then fails on the missing settings, naming them."""
    try:
        return model.model_validate(value, strict=True)
    except ValidationError as exc:
        problems = [e for e in exc.errors(include_url=False) if e["type"] != "missing"]
        if problems:
            raise BundleError(f"{where}: {describe(problems, ('config',))}") from None
        return None


def describe(errors: list[Any], within: tuple[str, ...] = ()) -> str:
    """The first of pydantic's `errors`, its field path spelt as in the bundle's JSON."""
    paths = list(dict.fromkeys(_path(error["loc"]) for error in errors))
    more = len(paths) - 1
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    first = {**errors[0], "loc": (*within, *errors[0]["loc"])}
    return _problem(first) + tail


_EXPECTED = {
    "int_type": ("an integer", "integers"),
    "int_parsing": ("an integer", "integers"),
    "int_from_float": ("an integer", "integers"),
    "string_type": ("a string", "strings"),
    "bool_type": ("true or false", "true/false values"),
    "float_type": ("a number", "numbers"),
    "finite_number": ("a finite number", "finite numbers"),
    "list_type": ("a list", "lists"),
    "dict_type": ("an object", "objects"),
    "model_type": ("an object", "objects"),
    "model_attributes_type": ("an object", "objects"),
    "datetime_type": ("an ISO date-time string", "ISO date-time strings"),
}


def _problem(error: Any) -> str:
    loc = tuple(error["loc"])
    path = _path(loc) or "the row"
    kind = error["type"]
    if kind == "missing":
        return f"missing {path}"
    if kind == "extra_forbidden":
        return (
            f"{path}: unknown field (this studio's bundle format has no such field); re-export it"
        )
    if kind in _EXPECTED:
        one, many = _EXPECTED[kind]
        got = _kind(error.get("input"))
        if loc and isinstance(loc[-1], int) and _path(loc[:-1]):
            return f"{_path(loc[:-1])}: expected a list of {many}, got {got} at {path}"
        return f"{path}: expected {one}, got {got}"
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{path}: {message}"


def _path(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif "[" in part or "(" in part:
            continue  # a union member's tag or a validator's name, not a JSON key
        elif re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part[:40]!r}]"
    return text


def _kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__
