"""lm-evaluation-harness task files with local data, as a studio template + data for Compare.

A harness task YAML names its data (`dataset_path: csv|json|parquet` with
`dataset_kwargs.data_files`), how a document becomes a prompt (`doc_to_text`), its answer
(`doc_to_target`) and the answers to score (`doc_to_choice`), and how shots are joined
(`target_delimiter`, `fewshot_delimiter`, `description`, `fewshot_split`,
`fewshot_config.sampler`). Those map onto a completion-mode template exactly — the harness builds
`description + shot + fewshot_delimiter + … + doc_to_text(doc)` and scores `target_delimiter +
choice`, which is what the studio's completion prompts do — so the same task gives the same
prompts, and the studio's acc / acc_norm are the harness's.

Supported keys are SUPPORTED; anything else (Python `!function` hooks, `process_docs`,
`filter_list`, Hub datasets, per-document choices, generation tasks) is refused by name, never
silently dropped: a dropped key would change what is measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from studio.datasets import Dataset, load_dataset
from studio.hosting import HostingPolicy
from studio.templates import PromptTemplate, TemplateError

SUPPORTED = frozenset(
    {
        "task",
        "tag",
        "group",
        "dataset_path",
        "dataset_name",
        "dataset_kwargs",
        "test_split",
        "validation_split",
        "training_split",
        "fewshot_split",
        "output_type",
        "doc_to_text",
        "doc_to_target",
        "doc_to_choice",
        "target_delimiter",
        "fewshot_delimiter",
        "description",
        "num_fewshot",
        "fewshot_config",
        "metric_list",
        "metadata",
    }
)
LOCAL_FORMATS = ("csv", "json", "parquet")
SAMPLERS = {"first_n": "first", "default": "random"}
METRICS = frozenset({"acc", "acc_norm"})


class TaskError(ValueError):
    """A task file the studio cannot run as written; the message names the key and the fix."""


@dataclass(frozen=True)
class ImportedTask:
    """A harness task as the studio runs it: a template, the evaluation split, the shot pool."""

    name: str
    template: PromptTemplate
    data: Path
    shot_pool: Path | None
    shots: int
    selection: str  # the studio's name for the harness sampler
    metrics: tuple[str, ...]


def load_task(path: str | Path, policy: HostingPolicy) -> ImportedTask:
    """Read and check a task file; its data files are read through `policy` like any data."""
    source = Path(path)
    spec = _read_yaml(source, policy)
    _check_keys(spec, source)
    files = _data_files(spec, source)
    split = _split(spec, files, ("test_split", "validation_split"), "evaluation")
    data = files[split]
    rows = load_dataset(data, policy=policy)
    pool = _shot_pool(spec, files, split)
    name = _template_name(spec, source)
    template = _template(spec, name, rows)
    selection = _sampler(spec)
    shots = int(spec.get("num_fewshot") or 0)
    if shots and pool is None:
        raise TaskError(
            f"{source.name}: num_fewshot is {shots} but the task names no fewshot_split or "
            "training_split. Fix: add fewshot_split naming a data_files entry."
        )
    return ImportedTask(name, template, data, pool, shots, selection, _metrics(spec, source))


def _read_yaml(source: Path, policy: HostingPolicy) -> dict[str, Any]:
    resolved = policy.check_data_path(source)
    try:
        spec = yaml.safe_load(Path(resolved).read_text(encoding="utf-8"))
    except yaml.constructor.ConstructorError as exc:
        raise TaskError(
            f"{source.name}: {exc.problem} — a `!function` hook is Python code the studio does "
            "not run. Fix: express the field as a Jinja2 string or a column name."
        ) from None
    except (OSError, yaml.YAMLError, UnicodeDecodeError) as exc:
        raise TaskError(f"{source.name}: cannot read the task file: {exc}") from None
    if not isinstance(spec, dict):
        raise TaskError(f"{source.name}: a task file is a YAML mapping of keys to values")
    return spec


def _check_keys(spec: dict[str, Any], source: Path) -> None:
    unknown = sorted(set(spec) - SUPPORTED)
    if unknown:
        raise TaskError(
            f"{source.name}: key(s) {', '.join(unknown)} are not supported (supported: "
            f"{', '.join(sorted(SUPPORTED))}). Fix: remove them, or run this task in "
            "lm-evaluation-harness itself."
        )
    if spec.get("output_type", "multiple_choice") != "multiple_choice":
        raise TaskError(
            f"{source.name}: output_type {spec['output_type']!r} is not supported; only "
            "multiple_choice (log-likelihood over doc_to_choice). Fix: use a multiple_choice task."
        )
    if spec.get("dataset_name") is not None:
        raise TaskError(
            f"{source.name}: dataset_name {spec['dataset_name']!r} names a Hub configuration; "
            "local data has none. Fix: remove dataset_name."
        )


def _data_files(spec: dict[str, Any], source: Path) -> dict[str, Path]:
    """Split name → local file, from dataset_path (a local format) and dataset_kwargs.data_files."""
    kind = spec.get("dataset_path")
    if kind not in LOCAL_FORMATS:
        raise TaskError(
            f"{source.name}: dataset_path {kind!r} is not local data; the studio reads no "
            f"datasets from the Hub. Fix: dataset_path: csv, json or parquet with "
            "dataset_kwargs.data_files naming your files."
        )
    kwargs = spec.get("dataset_kwargs") or {}
    extra = sorted(set(kwargs) - {"data_files"})
    files = kwargs.get("data_files")
    if extra or not isinstance(files, dict) or not files:
        raise TaskError(
            f"{source.name}: dataset_kwargs must hold only data_files, a mapping of split name to "
            f"file (got {kwargs!r}). Fix: e.g. data_files: {{validation: valid.csv, train: "
            "train.csv}."
        )
    return {str(split): _resolve(file, source) for split, file in files.items()}


def _resolve(file: Any, source: Path) -> Path:
    if not isinstance(file, str):
        raise TaskError(f"{source.name}: a data_files entry must be one file path, got {file!r}")
    path = Path(file)
    return path if path.is_absolute() else source.parent / path


def _split(spec: dict[str, Any], files: dict[str, Path], keys: tuple[str, ...], role: str) -> str:
    for key in keys:
        name = spec.get(key)
        if name is None:
            continue
        if name not in files:
            raise TaskError(
                f"{key} {name!r} is not among data_files ({', '.join(files)}). Fix: name one of "
                "them, or add it to data_files."
            )
        return str(name)
    raise TaskError(f"the task names no {role} split ({' or '.join(keys)}). Fix: add one.")


def _shot_pool(spec: dict[str, Any], files: dict[str, Path], evaluation: str) -> Path | None:
    if spec.get("fewshot_split") is None and spec.get("training_split") is None:
        return None
    split = _split(spec, files, ("fewshot_split", "training_split"), "few-shot")
    if split == evaluation:
        raise TaskError(
            f"fewshot_split {split!r} is the evaluation split: shots would leak. Fix: name "
            "another split."
        )
    return files[split]


def _template_name(spec: dict[str, Any], source: Path) -> str:
    stem = str(spec.get("task") or source.stem).lower()
    return ("lm-eval-" + re.sub(r"[^a-z0-9._-]+", "-", stem)).strip("-")[:64]


def _field(value: Any, columns: list[str], key: str) -> str:
    """A doc_to_* value as Jinja2: a column name becomes `{{ column }}`; Jinja stays as it is."""
    if not isinstance(value, str):
        raise TaskError(f"{key} must be a column name or a Jinja2 string, got {value!r}")
    if value in columns:
        if not value.isidentifier():
            raise TaskError(
                f"{key} names the column {value!r}, which is not a plain name a template can "
                "read. Fix: rename the column (letters, digits, underscores)."
            )
        return "{{ " + value + " }}"
    return value


def _choices(spec: dict[str, Any]) -> list[str]:
    choices = spec.get("doc_to_choice")
    if isinstance(choices, list) and choices and all(isinstance(c, str) for c in choices):
        return choices
    raise TaskError(
        f"doc_to_choice {choices!r}: only a fixed list of answer strings is supported (choices "
        "per document, from a column or a Jinja expression, are not). Fix: list the choices."
    )


def _template(spec: dict[str, Any], name: str, rows: Dataset) -> PromptTemplate:
    columns = list(rows.columns)
    choices = _choices(spec)
    delimiter = str(spec.get("fewshot_delimiter", "\n\n"))
    answer = _field(spec.get("doc_to_target"), columns, "doc_to_target")
    fields: dict[str, Any] = {
        "name": name,
        "description": f"lm-evaluation-harness task {spec.get('task') or name}, imported",
        "mode": "completion",
        "system": _system(spec.get("description"), delimiter),
        "template": _field(spec.get("doc_to_text"), columns, "doc_to_text"),
        "answer": answer,
        "choices": choices,
        "shot_separator": delimiter,
        "target_delimiter": str(spec.get("target_delimiter", " ")),
    }
    if _targets_are_indices(spec.get("doc_to_target"), rows):
        fields["label_map"] = {str(i): choice for i, choice in enumerate(choices)}
    try:
        return PromptTemplate(**fields)
    except TemplateError as exc:
        raise TaskError(f"the task does not make a valid template: {exc}") from None


def _system(description: Any, delimiter: str) -> str | None:
    """The harness glues `description` straight before the first shot (or the query); the studio
    puts the fewshot delimiter after its preamble, so the description must end with it."""
    if not description:
        return None
    text = str(description)
    if not text.endswith(delimiter) or "{{" in text:
        raise TaskError(
            f"description {text!r} must be plain text ending with the fewshot_delimiter "
            f"{delimiter!r} (the harness puts nothing between them and the first shot). Fix: "
            "end the description with it."
        )
    return text[: -len(delimiter)] if delimiter else text


def _targets_are_indices(target: Any, rows: Dataset) -> bool:
    """doc_to_target names a column of choice indices (0, 1, …), as harness tasks usually do."""
    if not isinstance(target, str) or target not in rows.columns:
        return False
    values = [str(row[target]).strip() for row in rows.rows[:200]]
    return bool(values) and all(v.isdigit() for v in values)


def _sampler(spec: dict[str, Any]) -> str:
    config = spec.get("fewshot_config") or {}
    sampler = config.get("sampler", "default")
    extra = sorted(set(config) - {"sampler"})
    if extra or sampler not in SAMPLERS:
        raise TaskError(
            f"fewshot_config {config!r}: only sampler first_n or default is supported. Fix: use "
            "one of them (the harness's default draws with its own seed; the studio's random "
            "draws are seeded too but differ, so use first_n to compare numbers)."
        )
    return SAMPLERS[sampler]


def _metrics(spec: dict[str, Any], source: Path) -> tuple[str, ...]:
    entries = spec.get("metric_list") or [{"metric": "acc"}]
    names = [str(e.get("metric") if isinstance(e, dict) else e) for e in entries]
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise TaskError(
            f"{source.name}: metric(s) {unknown} are not supported for multiple_choice; the "
            "studio reports acc and acc_norm. Fix: list only those."
        )
    return tuple(names)
