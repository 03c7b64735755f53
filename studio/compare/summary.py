"""Numbers a user can trust: accuracy per cell with a 95% bootstrap CI, mean ± spread across
seeds for cells that differ only in their seed, and each cell's paired difference to a reference
cell over the same examples (studio/compare/paired.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from studio.compare.metrics import (
    GRADED_METRICS,
    Estimate,
    SeedSummary,
    bootstrap_ci,
    calibrated_prediction,
    summarize_seeds,
)
from studio.compare.paired import Paired, against_reference
from studio.store import Store
from studio.store.records import ComparisonResult


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
    calibrated: Estimate | None = None  # accuracy after contextual calibration, if asked for
    prior: dict[str, float] | None = None  # the calibration's label prior, choice -> probability


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
                **_calibrated(cfg.calibration, rows, bootstrap_seed),
            )
        )
    return summaries


def _calibrated(
    calibration: dict[str, Any] | None, rows: list[ComparisonResult], seed: int
) -> dict[str, Any]:
    """Accuracy with each row's choice scores divided by the configuration's content-free prior."""
    if not calibration or not rows:
        return {}
    prior = calibration["prior"]
    verdicts = []
    for row in rows:
        scores = row.choice_scores or []
        best = calibrated_prediction([s["logprob"] for s in scores], prior)
        verdicts.append(float(scores[best]["choice"] == row.gold))
    choices = [s["choice"] for s in rows[0].choice_scores or []]
    return {
        "calibrated": bootstrap_ci(verdicts, seed=seed),
        "prior": dict(zip(choices, prior, strict=True)),
    }


def primary_metric(scoring: str, config: dict[str, object]) -> tuple[str, bool]:
    """The metric a run is judged on, and whether it is right/wrong (binary) or graded."""
    metric = str(config.get("metric") or "exact")
    if scoring == "generate" and metric in GRADED_METRICS:
        return metric, False
    return "accuracy", True


def paired_summaries(
    store: Store, run_id: int, reference: int = 1, bootstrap_seed: int = 0
) -> list[Paired | None]:
    """Each configuration against configuration `reference` (1-based position) on the run's
    primary metric; None in the reference's place."""
    run = store.get_comparison_run(run_id)
    if run is None:
        raise ValueError(f"comparison run #{run_id} does not exist")
    metric, binary = primary_metric(run.scoring, run.config)
    outcomes: dict[int, dict[int, float]] = defaultdict(dict)
    for result in store.comparison_results(run_id):
        value = float(result.correct) if binary else float(result.score or 0.0)
        outcomes[result.config_id][result.example_index] = value
    ordered = sorted(run.configs, key=lambda c: c.position)
    return against_reference(
        [outcomes.get(cfg.id, {}) for cfg in ordered],
        reference,
        metric=metric,
        binary=binary,
        seed=bootstrap_seed,
    )


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


def paired_text(paired: Paired) -> str:
    """'+0.034 [-0.010, +0.080] p=0.21 (Holm 0.42), discordant 12/8' for tables and the CLI."""
    d = paired.difference
    text = f"{d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}] p={paired.p_value:.3g}"
    if paired.p_adjusted is not None:
        text += f" (Holm {paired.p_adjusted:.3g})"
    if paired.discordant is not None:
        text += f", discordant {paired.discordant[0]}/{paired.discordant[1]}"
    return text


def format_paired(summaries: list[ConfigSummary], paired: list[Paired | None]) -> str:
    """Plain-text lines: every configuration against the reference, on the same examples."""
    tests = {p.test for p in paired if p is not None}
    if not tests:
        return ""
    reference = next(p.reference for p in paired if p is not None)
    metric = next(p.metric for p in paired if p is not None)
    how = "McNemar exact" if tests == {"mcnemar-exact"} else "paired permutation"
    lines = [
        f"paired differences in {metric} against C{reference} (95% paired bootstrap CI, "
        f"{how} p; discordant = only this right / only C{reference} right):"
    ]
    ordered = sorted(summaries, key=lambda s: s.position)
    for position, (summary, pair) in enumerate(zip(ordered, paired, strict=True), start=1):
        if pair is not None:
            lines.append(f"  C{position} {summary.label[:48]}: {paired_text(pair)} (n={pair.n})")
    return "\n".join(lines)


def format_calibrated(summaries: list[ConfigSummary]) -> str:
    """Raw and calibrated accuracy side by side, with each configuration's label prior."""
    calibrated = [s for s in sorted(summaries, key=lambda s: s.position) if s.calibrated]
    if not calibrated:
        return ""
    lines = ["contextual calibration (prior from the content-free inputs 'N/A', '', '[MASK]'):"]
    for s in calibrated:
        assert s.calibrated is not None and s.prior is not None
        prior = ", ".join(f"{choice} {p:.2f}" for choice, p in s.prior.items())
        raw, cal = s.accuracy, s.calibrated
        lines.append(
            f"  C{s.position + 1} {s.label[:40]}: accuracy {raw.value:.3f} → calibrated "
            f"{cal.value:.3f} [{cal.low:.3f}, {cal.high:.3f}]; prior {prior}"
        )
    return "\n".join(lines)
