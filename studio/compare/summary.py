"""Numbers a user can trust: accuracy per cell with a 95% bootstrap CI, and mean ± spread across
seeds for cells that differ only in their seed."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from studio.compare.metrics import Estimate, SeedSummary, bootstrap_ci, summarize_seeds
from studio.store import Store


@dataclass(frozen=True)
class ConfigSummary:
    config_id: int
    position: int
    label: str
    model: str
    template: str
    template_version: int
    shots: int
    seed: int
    n: int
    accuracy: Estimate
    acc_norm: Estimate | None  # log-likelihood runs only
    mean_score: Estimate | None  # generation runs (e.g. token F1)
    examples_per_s: float


@dataclass(frozen=True)
class SeedGroup:
    """Cells equal but for the seed: the spread tells how much the shot sample matters."""

    model: str
    template: str
    shots: int
    accuracy: SeedSummary


def summarize_run(store: Store, run_id: int, bootstrap_seed: int = 0) -> list[ConfigSummary]:
    run = store.get_comparison_run(run_id)
    if run is None:
        raise ValueError(f"comparison run #{run_id} does not exist")
    results = store.comparison_results(run_id)
    by_config = defaultdict(list)
    for result in results:
        by_config[result.config_id].append(result)
    summaries = []
    for cfg in run.configs:
        rows = by_config.get(cfg.id, [])
        latency_s = sum(r.latency_ms for r in rows) / 1000
        norms = [float(r.correct_norm) for r in rows if r.correct_norm is not None]
        scores = [r.score for r in rows if r.score is not None]
        summaries.append(
            ConfigSummary(
                config_id=cfg.id,
                position=cfg.position,
                label=cfg.label,
                model=cfg.model_spec,
                template=cfg.template_name,
                template_version=cfg.template_version,
                shots=cfg.shots,
                seed=cfg.seed,
                n=len(rows),
                accuracy=bootstrap_ci([float(r.correct) for r in rows], seed=bootstrap_seed),
                acc_norm=bootstrap_ci(norms, seed=bootstrap_seed) if norms else None,
                mean_score=bootstrap_ci(scores, seed=bootstrap_seed) if scores else None,
                examples_per_s=len(rows) / latency_s if latency_s > 0 else 0.0,
            )
        )
    return summaries


def seed_groups(summaries: list[ConfigSummary]) -> list[SeedGroup]:
    groups: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    for s in summaries:
        if s.n:
            groups[(s.model, s.template, s.shots)].append(s.accuracy.value)
    return [
        SeedGroup(model, template, shots, summarize_seeds(values))
        for (model, template, shots), values in groups.items()
        if len(values) > 1
    ]


def format_table(summaries: list[ConfigSummary]) -> str:
    """A plain-text summary table for the terminal."""
    header = (
        f"{'model':<24} {'template':<26} {'shots':>5} {'seed':>4} {'n':>5}  "
        f"{'accuracy [95% CI]':<24} {'ex/s':>6}"
    )
    lines = [header, "-" * len(header)]
    for s in summaries:
        acc = f"{s.accuracy.value:.3f} [{s.accuracy.low:.3f}, {s.accuracy.high:.3f}]"
        lines.append(
            f"{s.model[:24]:<24} {s.template[:26]:<26} {s.shots:>5} {s.seed:>4} {s.n:>5}  "
            f"{acc:<24} {s.examples_per_s:>6.1f}"
        )
    return "\n".join(lines)
