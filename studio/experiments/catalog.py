"""One list of every comparison run, tuning run and adapter, with filters and a headline metric.

A comparison run's headline is its best config's accuracy with the same 95% bootstrap interval
the Compare tab shows (same flags, same seed); a tuning run's is its final train and eval loss
(the latest logged while it trains). Filtering happens here, over the store's records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from pathlib import Path

from studio.compare.metrics import Estimate, bootstrap_ci
from studio.experiments.refs import RunRef
from studio.store import (
    AdapterRecord,
    ComparisonRun,
    RunAnnotations,
    Store,
    TemplateVersion,
    TuningRun,
)

KIND_CHOICES = ("comparison", "tuning", "adapter")
LIST_LIMIT = 1000


@dataclass(frozen=True)
class Headline:
    """The one number a list row shows: accuracy with its CI, or final losses."""

    text: str
    value: float | None = None
    estimate: Estimate | None = None
    best_label: str | None = None
    train_loss: float | None = None
    eval_loss: float | None = None


@dataclass(frozen=True)
class Entry:
    """One row of the experiments list."""

    ref: RunRef
    name: str
    status: str
    created_at: datetime
    models: tuple[str, ...]
    templates: tuple[str, ...]
    dataset: str | None
    dataset_hash: str | None
    tags: tuple[str, ...]
    note: str | None
    headline: Headline
    progress: str

    @property
    def kind(self) -> str:
        return self.ref.kind


@dataclass(frozen=True)
class Filters:
    """What to show; None or '' means any. Text filters match case-insensitive substrings."""

    kind: str | None = None
    status: str | None = None
    model: str | None = None
    template: str | None = None
    dataset: str | None = None
    tag: str | None = None
    search: str | None = None
    since: date | datetime | None = None
    until: date | datetime | None = None

    def __post_init__(self) -> None:
        if self.kind and self.kind not in KIND_CHOICES:
            raise ValueError(f"kind must be one of {', '.join(KIND_CHOICES)}; got {self.kind!r}")


def list_entries(store: Store, filters: Filters | None = None) -> list[Entry]:
    """Every run and adapter matching `filters`, newest first."""
    filters = filters or Filters()
    versions = _VersionCache(store)
    entries: list[Entry] = []
    if filters.kind in (None, "", "comparison"):
        runs = store.list_comparison_runs(limit=LIST_LIMIT)
        notes = store.run_annotations("comparison", [r.id for r in runs])
        entries += [comparison_entry(store, r, notes.get(r.id)) for r in runs]
    if filters.kind in (None, "", "tuning"):
        tunings = store.list_tuning_runs(limit=LIST_LIMIT)
        notes = store.run_annotations("tuning", [r.id for r in tunings])
        entries += [tuning_entry(store, r, notes.get(r.id), versions) for r in tunings]
    if filters.kind in (None, "", "adapter"):
        entries += [adapter_entry(store, a, versions) for a in store.list_adapter_records()]
    found = [entry for entry in entries if matches(entry, filters)]
    return sorted(found, key=lambda e: (e.created_at, e.ref), reverse=True)


def comparison_headline(store: Store, run: ComparisonRun) -> Headline:
    """Best config by accuracy (first on ties), with its bootstrap CI."""
    tallies = store.config_tallies([run.id])
    scored = [(c, tallies[c.id]) for c in run.configs if c.id in tallies and tallies[c.id].n]
    if not scored:
        return Headline("no rows yet")
    best, _ = max(scored, key=lambda pair: (pair[1].n_correct / pair[1].n, -pair[0].position))
    estimate = bootstrap_ci([float(flag) for flag in store.correct_flags(best.id)])
    text = (
        f"acc {estimate.value:.3f} [{estimate.low:.3f}, {estimate.high:.3f}] · C{best.position + 1}"
    )
    return Headline(text, estimate.value, estimate, best.label)


def tuning_headline(run: TuningRun) -> Headline:
    """Final train and eval loss from the summary, else the latest logged."""
    source = run.summary or {}
    train = _number(source.get("train_loss", run.progress.get("loss")))
    evaluated = _number(source.get("eval_loss", run.progress.get("eval_loss")))
    if train is None and evaluated is None:
        return Headline("no loss yet")
    parts = [f"loss {train:.4f}" if train is not None else "", ""]
    if evaluated is not None:
        parts[1] = f"eval {evaluated:.4f}"
    text = " · ".join(part for part in parts if part)
    return Headline(
        text, evaluated if evaluated is not None else train, None, None, train, evaluated
    )


def comparison_entry(store: Store, run: ComparisonRun, notes: RunAnnotations | None) -> Entry:
    notes = notes or RunAnnotations()
    total = run.n_examples * len(run.configs)
    return Entry(
        ref=RunRef("comparison", run.id),
        name=notes.display_name or run.name or f"comparison {run.id}",
        status=run.status,
        created_at=run.created_at,
        models=tuple(dict.fromkeys(c.model_spec for c in run.configs)),
        templates=tuple(
            dict.fromkeys(f"{c.template_name}@v{c.template_version}" for c in run.configs)
        ),
        dataset=run.dataset.name,
        dataset_hash=run.dataset.content_hash,
        tags=notes.tags,
        note=notes.note,
        headline=comparison_headline(store, run),
        progress=f"{len(run.configs)} configs · {run.results_done}/{total} rows",
    )


def tuning_entry(
    store: Store, run: TuningRun, notes: RunAnnotations | None, versions: _VersionCache
) -> Entry:
    notes = notes or RunAnnotations()
    dataset = store.get_dataset(run.dataset_id) if run.dataset_id is not None else None
    version = versions.get(run.template_version_id)
    step, total = run.progress.get("step"), run.progress.get("total_steps")
    return Entry(
        ref=RunRef("tuning", run.id),
        name=notes.display_name or run.name,
        status=run.status,
        created_at=run.created_at,
        models=(run.base_model,),
        templates=(f"{version.template_name}@v{version.version}",) if version else (),
        dataset=dataset.name if dataset else None,
        dataset_hash=dataset.content_hash if dataset else None,
        tags=notes.tags,
        note=notes.note,
        headline=tuning_headline(run),
        progress=f"step {step or 0}/{total or '?'}",
    )


def adapter_entry(store: Store, adapter: AdapterRecord, versions: _VersionCache) -> Entry:
    assert adapter.id is not None and adapter.created_at is not None
    dataset = store.get_dataset(adapter.dataset_id) if adapter.dataset_id is not None else None
    version = versions.get(adapter.template_version_id)
    train = _number(adapter.metrics.get("train_loss"))
    evaluated = _number(adapter.metrics.get("eval_loss"))
    text = " · ".join(
        part
        for part in (
            f"loss {train:.4f}" if train is not None else "",
            f"eval {evaluated:.4f}" if evaluated is not None else "",
        )
        if part
    )
    run = f"from t{adapter.tuning_run_id}" if adapter.tuning_run_id else "no run recorded"
    return Entry(
        ref=RunRef("adapter", adapter.id),
        name=adapter.name,
        status="ready" if Path(adapter.path).is_dir() else "missing",
        created_at=adapter.created_at,
        models=(adapter.base_model,),
        templates=(f"{version.template_name}@v{version.version}",) if version else (),
        dataset=dataset.name if dataset else None,
        dataset_hash=dataset.content_hash if dataset else None,
        tags=(),
        note=None,
        headline=Headline(text or "no metrics", evaluated, None, None, train, evaluated),
        progress=run,
    )


def matches(entry: Entry, filters: Filters) -> bool:
    checks = (
        not filters.status or entry.status == filters.status,
        _contains(entry.models, filters.model),
        _contains(entry.templates, filters.template),
        _contains((entry.dataset or "", entry.dataset_hash or ""), filters.dataset),
        not filters.tag or filters.tag.strip().lower() in (t.lower() for t in entry.tags),
        _contains(_searchable(entry), filters.search),
        filters.since is None or entry.created_at >= _moment(filters.since, end=False),
        filters.until is None or entry.created_at <= _moment(filters.until, end=True),
    )
    return all(checks)


def _searchable(entry: Entry) -> tuple[str, ...]:
    return (
        str(entry.ref),
        entry.name,
        entry.status,
        entry.dataset or "",
        entry.note or "",
        entry.headline.best_label or "",
        *entry.models,
        *entry.templates,
        *entry.tags,
    )


def _contains(values: tuple[str, ...], wanted: str | None) -> bool:
    if not wanted or not wanted.strip():
        return True
    needle = wanted.strip().lower()
    return any(needle in value.lower() for value in values)


def _moment(value: date | datetime, *, end: bool) -> datetime:
    """A date filter as a UTC instant: a bare date covers its whole day."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    return datetime.combine(value, time.max if end else time.min, tzinfo=timezone.utc)


def _number(value: object) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


class _VersionCache:
    """Template versions by id, each read once per listing."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.found: dict[int, TemplateVersion | None] = {}

    def get(self, version_id: int | None) -> TemplateVersion | None:
        if version_id is None:
            return None
        if version_id not in self.found:
            self.found[version_id] = self.store.get_template_version(version_id)
        return self.found[version_id]
