"""Opening one run: its full config, lineage, metrics with CIs, per-example rows, curves and log.

Lineage is what a result depends on: the exact template versions (with their text), the dataset
(name and content hash) and shot pool, the base models, the adapter, and the seeds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from studio.compare.summary import ConfigSummary, summarize_run
from studio.experiments.catalog import (
    Entry,
    _VersionCache,
    adapter_entry,
    comparison_entry,
    tuning_entry,
)
from studio.experiments.refs import RunRef
from studio.store import (
    AdapterRecord,
    ComparisonRun,
    DatasetRecord,
    MetricPoint,
    Store,
    TemplateVersion,
    TuningRun,
)
from studio.tuning.jobs import log_tail as tail

LOG_LINES = 60


@dataclass(frozen=True)
class Lineage:
    templates: list[TemplateVersion]
    dataset: DatasetRecord | None
    shot_pool: DatasetRecord | None
    base_models: tuple[str, ...]
    adapters: tuple[str, ...]
    seeds: tuple[int, ...]
    # "C1" -> its contextual calibration (content-free inputs, their prompts, the prior)
    calibrations: dict[str, dict[str, Any]] = field(default_factory=dict)
    # A judged run's judge: model, template name, template version (and its id), mode, scoring
    judge: dict[str, Any] | None = None
    # Repeated sampling: samples per example and the temperature they were drawn at
    sampling: dict[str, Any] | None = None


@dataclass(frozen=True)
class RunDetail:
    """Everything the detail view and `studio runs show` print about one run."""

    entry: Entry
    config: dict[str, Any]
    lineage: Lineage
    summaries: list[ConfigSummary] = field(default_factory=list)
    final_metrics: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    points: list[MetricPoint] = field(default_factory=list)
    log: str = ""
    error: str | None = None

    @property
    def ref(self) -> RunRef:
        return self.entry.ref


def open_run(store: Store, ref: RunRef) -> RunDetail:
    """The detail of a run or adapter; ValueError naming the id when there is none."""
    if ref.kind == "comparison":
        run = store.get_comparison_run(ref.id)
        if run is None:
            raise ValueError(f"no comparison run {ref}; `studio runs list` shows the ids")
        return _comparison_detail(store, run)
    if ref.kind == "tuning":
        tuning = store.get_tuning_run(ref.id)
        if tuning is None:
            raise ValueError(f"no tuning run {ref}; `studio runs list` shows the ids")
        return _tuning_detail(store, tuning)
    adapter = store.adapter_by_id(ref.id)
    if adapter is None:
        raise ValueError(f"no adapter {ref}; `studio runs list --kind adapter` shows the ids")
    return _adapter_detail(store, adapter)


def _sampling(config: dict[str, Any]) -> dict[str, Any] | None:
    samples = int(config.get("samples") or 1)
    if samples < 2:
        return None
    return {"samples": samples, "temperature": config.get("temperature")}


def example_rows(store: Store, run: ComparisonRun) -> list[dict[str, Any]]:
    """One row per scored example and config, with the exact prompt the model saw."""
    configs = {c.id: c for c in run.configs}
    rows = []
    for result in store.comparison_results(run.id):
        config = configs[result.config_id]
        rows.append(
            {
                "run": f"c{run.id}",
                "config": f"C{config.position + 1}",
                "label": config.label,
                "model": config.model_spec,
                "template": f"{config.template_name}@v{config.template_version}",
                "shots": config.shots,
                "seed": config.seed,
                "example_index": result.example_index,
                "gold": result.gold,
                "prediction": result.prediction,
                "correct": result.correct,
                "correct_norm": result.correct_norm,
                "score": result.score,
                "output": result.output,
                "choice_scores": result.choice_scores,
                "prompt_tokens": result.prompt_tokens,
                "latency_ms": result.latency_ms,
                "prompt": result.prompt_text,
                "samples": result.samples,
                "judgement": result.judgement,
            }
        )
    return rows


def log_tail(run: TuningRun, lines: int = LOG_LINES) -> str:
    return tail(run, lines)


def _comparison_detail(store: Store, run: ComparisonRun) -> RunDetail:
    notes = store.run_annotations("comparison", [run.id]).get(run.id)
    versions = [
        store.get_template_version(i)
        for i in _unique(
            [c.template_version_id for c in run.configs]
            + ([run.judge["template_version_id"]] if run.judge else [])
        )
    ]
    lineage = Lineage(
        templates=[v for v in versions if v is not None],
        dataset=run.dataset,
        shot_pool=run.shot_pool,
        base_models=_unique(c.model_spec for c in run.configs if not _is_adapter(c.model_spec)),
        adapters=_unique(c.model_spec for c in run.configs if _is_adapter(c.model_spec)),
        seeds=_unique(c.seed for c in run.configs),
        calibrations={f"C{c.position + 1}": c.calibration for c in run.configs if c.calibration},
        judge=run.judge,
        sampling=_sampling(run.config),
    )
    return RunDetail(
        entry=comparison_entry(store, run, notes),
        config=run.config,
        lineage=lineage,
        summaries=summarize_run(store, run.id),
        examples=example_rows(store, run),
        error=run.error,
    )


def _tuning_detail(store: Store, run: TuningRun) -> RunDetail:
    notes = store.run_annotations("tuning", [run.id]).get(run.id)
    versions = _VersionCache(store)
    version = versions.get(run.template_version_id)
    seed = run.config.get("training", {}).get("seed")
    lineage = Lineage(
        templates=[version] if version else [],
        dataset=store.get_dataset(run.dataset_id) if run.dataset_id is not None else None,
        shot_pool=None,
        base_models=(run.base_model,),
        adapters=(run.adapter_path,),
        seeds=(seed,) if isinstance(seed, int) else (),
    )
    return RunDetail(
        entry=tuning_entry(store, run, notes, versions),
        config=run.config,
        lineage=lineage,
        final_metrics=dict(run.summary or run.progress),
        points=store.metric_points(run.id),
        log=log_tail(run),
        error=run.error,
    )


def _adapter_detail(store: Store, adapter: AdapterRecord) -> RunDetail:
    versions = _VersionCache(store)
    version = versions.get(adapter.template_version_id)
    run = store.get_tuning_run(adapter.tuning_run_id) if adapter.tuning_run_id else None
    lineage = Lineage(
        templates=[version] if version else [],
        dataset=store.get_dataset(adapter.dataset_id) if adapter.dataset_id is not None else None,
        shot_pool=None,
        base_models=(adapter.base_model,),
        adapters=(adapter.path,),
        seeds=(),
    )
    return RunDetail(
        entry=adapter_entry(store, adapter, versions),
        config=run.config if run else {"path": adapter.path, "base_model": adapter.base_model},
        lineage=lineage,
        final_metrics=dict(adapter.metrics),
        points=store.metric_points(run.id) if run else [],
    )


def _is_adapter(spec: str) -> bool:
    if spec.startswith(("adapter:", "adapters/")):
        return True
    return (Path(spec) / "adapter_config.json").is_file()


def _unique(values: Any) -> tuple[Any, ...]:
    return tuple(dict.fromkeys(values))
