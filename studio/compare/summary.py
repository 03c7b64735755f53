"""Numbers a user can trust: accuracy per cell with a 95% bootstrap CI, mean ± spread across
seeds for cells that differ only in their seed, and each cell's paired difference to a reference
cell over the same examples (studio/compare/paired.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from studio.compare.metrics import (
    GRADED_METRICS,
    Estimate,
    SeedSummary,
    bootstrap_ci,
    calibrated_prediction,
    consistency,
    pass_at_k,
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
    sampled = int(config.get("samples") or 1) > 1  # type: ignore[call-overload]
    if scoring == "generate" and metric in GRADED_METRICS:
        return (f"{metric} (mean of samples)" if sampled else metric), False
    if scoring == "generate" and sampled:
        return "pass@1", False  # each example's share of right samples
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


@dataclass(frozen=True)
class JudgeSummary:
    """A judge's verdicts on one configuration's answers.

    Pointwise: the mean judge score with its CI, the share judged passing (score >= 0.5), and,
    since every example has a gold answer, the judge's agreement with the run's metric verdict
    (and Cohen's kappa). Pairwise (against the reference): wins, ties and losses after both
    orders, the win rate (win 1, tie 0.5) with its CI, and the judge's position consistency.
    """

    position: int
    mode: str
    n: int
    score: Estimate
    unjudged: int = 0  # served judges: answers whose verdict could not be read
    pass_rate: float | None = None
    agreement: float | None = None
    kappa: float | None = None
    wins: int = 0
    ties: int = 0
    losses: int = 0
    consistency: float | None = None


@dataclass(frozen=True)
class SamplingSummary:
    """Repeated sampling on one configuration: unbiased pass@k, how often samples agree, and the
    metric's mean ± spread across sample draws (each draw: sample j of every example)."""

    position: int
    samples: int
    pass_at: dict[int, float]
    consistency: float
    per_draw: SeedSummary
    majority: float  # accuracy of the majority answer (self-consistency)


def judge_summaries(store: Store, run_id: int, bootstrap_seed: int = 0) -> list[JudgeSummary]:
    """One summary per configuration the judge graded, by position."""
    run = store.get_comparison_run(run_id)
    if run is None or not run.judge:
        return []
    by_config = defaultdict(list)
    for result in store.comparison_results(run_id):
        if result.judgement is not None:
            by_config[result.config_id].append(result)
    out = []
    for cfg in sorted(run.configs, key=lambda c: c.position):
        rows = by_config.get(cfg.id)
        if rows:
            summarize = _pointwise if run.judge["mode"] == "pointwise" else _pairwise
            out.append(summarize(cfg.position, rows, bootstrap_seed))
    return out


def _pointwise(position: int, rows: list[ComparisonResult], seed: int) -> JudgeSummary:
    # lazy: statsmodels' inter-rater module is only needed for judged runs
    from statsmodels.stats.inter_rater import cohens_kappa

    judged = [r for r in rows if r.judgement and r.judgement.get("score") is not None]
    scores = [float(r.judgement["score"]) for r in judged if r.judgement]
    passed = [s >= 0.5 for s in scores]
    table = np.zeros((2, 2))
    for verdict, row in zip(passed, judged, strict=True):
        table[int(verdict), int(row.correct)] += 1
    agree = float(np.trace(table) / table.sum()) if judged else None
    kappa = None
    if judged and (table.sum(axis=0) > 0).all() and (table.sum(axis=1) > 0).all():
        kappa = float(cohens_kappa(table).kappa)
    return JudgeSummary(
        position=position,
        mode="pointwise",
        n=len(judged),
        score=bootstrap_ci(scores, seed=seed),
        unjudged=len(rows) - len(judged),
        pass_rate=sum(passed) / len(passed) if passed else None,
        agreement=agree,
        kappa=kappa,
    )


def _pairwise(position: int, rows: list[ComparisonResult], seed: int) -> JudgeSummary:
    outcomes = [r.judgement.get("outcome") for r in rows if r.judgement]
    value = {"win": 1.0, "tie": 0.5, "loss": 0.0}
    consistent = [bool(r.judgement.get("consistent")) for r in rows if r.judgement]
    return JudgeSummary(
        position=position,
        mode="pairwise",
        n=len(outcomes),
        score=bootstrap_ci([value[o] for o in outcomes if o in value], seed=seed),
        wins=outcomes.count("win"),
        ties=outcomes.count("tie"),
        losses=outcomes.count("loss"),
        consistency=sum(consistent) / len(consistent) if consistent else None,
    )


def sampling_summaries(store: Store, run_id: int) -> list[SamplingSummary]:
    """One summary per configuration of a repeated-sampling run, by position."""
    run = store.get_comparison_run(run_id)
    if run is None or int(run.config.get("samples") or 1) < 2:
        return []
    by_config = defaultdict(list)
    for result in store.comparison_results(run_id):
        if result.samples:
            by_config[result.config_id].append(result)
    out = []
    for cfg in sorted(run.configs, key=lambda c: c.position):
        rows = by_config.get(cfg.id)
        if not rows:
            continue
        n = min(len(r.samples or []) for r in rows)
        right = [sum(bool(s["correct"]) for s in (r.samples or [])[:n]) for r in rows]
        ks = sorted({1, *(2**i for i in range(1, n.bit_length()) if 2**i <= n), n})
        draws = [
            sum(float((r.samples or [])[j]["score"]) for r in rows) / len(rows) for j in range(n)
        ]
        out.append(
            SamplingSummary(
                position=cfg.position,
                samples=n,
                pass_at={k: float(np.mean([pass_at_k(n, c, k) for c in right])) for k in ks},
                consistency=float(
                    np.mean([consistency([s["prediction"] for s in r.samples or []]) for r in rows])
                ),
                per_draw=summarize_seeds(draws),
                majority=sum(r.correct for r in rows) / len(rows),
            )
        )
    return out


def format_judges(judges: list[JudgeSummary], reference: int) -> str:
    """Plain-text lines for a judged run."""
    lines = []
    for j in judges:
        est = f"[{j.score.low:.3f}, {j.score.high:.3f}]"
        if j.mode == "pointwise":
            agree = "" if j.agreement is None else f"; agrees with the metric {j.agreement:.2f}"
            kappa = "" if j.kappa is None else f" (kappa {j.kappa:.2f})"
            lines.append(
                f"  C{j.position + 1}: judge score {j.score.value:.3f} {est}, passing "
                f"{(j.pass_rate or 0):.2f}{agree}{kappa} (n={j.n})"
            )
        else:
            lines.append(
                f"  C{j.position + 1} vs C{reference}: win/tie/loss {j.wins}/{j.ties}/{j.losses}, "
                f"win rate {j.score.value:.3f} {est}, position consistency "
                f"{(j.consistency or 0):.2f} (n={j.n})"
            )
    return ("judge:\n" + "\n".join(lines)) if lines else ""


def format_sampling(sampling: list[SamplingSummary]) -> str:
    """Plain-text lines for a repeated-sampling run."""
    lines = []
    for s in sampling:
        passes = ", ".join(f"pass@{k} {v:.3f}" for k, v in s.pass_at.items())
        lines.append(
            f"  C{s.position + 1}: {s.samples} samples; {passes}; majority {s.majority:.3f}; "
            f"consistency {s.consistency:.2f}; per draw {s.per_draw.mean:.3f} "
            f"± {s.per_draw.std:.3f}"
        )
    return ("repeated sampling:\n" + "\n".join(lines)) if lines else ""
