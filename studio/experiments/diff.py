"""Comparing runs side by side: metrics, a config diff, loss curves and per-example agreement.

Agreement only means something over the same examples, so it covers the comparison runs whose
dataset has the same content hash as the first one's; each run is represented by its best
config (the one its headline shows). Over those shared examples every run is also paired with
the first one: difference in accuracy, paired bootstrap interval, McNemar's exact test
(studio/compare/paired.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from studio.compare.paired import Paired, against_reference
from studio.experiments.detail import RunDetail, open_run
from studio.experiments.refs import RunRef
from studio.store import Store

MISSING = "—"


@dataclass(frozen=True)
class DiffRow:
    key: str
    values: list[str]

    @property
    def differs(self) -> bool:
        return len(set(self.values)) > 1


@dataclass(frozen=True)
class Agreement:
    """Which examples each run got right, over the examples all of them scored."""

    dataset: str
    dataset_hash: str
    runs: list[str]  # column labels, e.g. "c3 · C2"
    rows: list[dict[str, Any]]  # example_index, gold, then one bool per run label
    pairwise: list[tuple[str, str, float]]  # (run, run, share of examples with the same verdict)
    all_right: int
    all_wrong: int
    excluded: list[str] = field(default_factory=list)  # why a run is not in the view
    paired: list[Paired | None] = field(default_factory=list)  # each run against the first

    @property
    def n(self) -> int:
        return len(self.rows)


@dataclass(frozen=True)
class RunComparison:
    details: list[RunDetail]
    metrics: list[dict[str, Any]]
    config_diff: list[DiffRow]
    curves: list[dict[str, Any]]  # run, step, metric (loss | eval_loss), value
    agreement: Agreement | None
    agreement_note: str


def compare_runs(store: Store, refs: list[RunRef]) -> RunComparison:
    if len(refs) < 2:
        raise ValueError("select at least two runs to compare")
    details = [open_run(store, ref) for ref in refs]
    agreement, note = agreement_view(store, details)
    return RunComparison(
        details=details,
        metrics=[metric_row(d) for d in details],
        config_diff=config_diff([d.config for d in details]),
        curves=loss_curves(details),
        agreement=agreement,
        agreement_note=note,
    )


def metric_row(detail: RunDetail) -> dict[str, Any]:
    entry, headline = detail.entry, detail.entry.headline
    estimate = headline.estimate
    return {
        "run": str(entry.ref),
        "name": entry.name,
        "kind": entry.kind,
        "status": entry.status,
        "dataset": entry.dataset,
        "headline": headline.text,
        "accuracy": estimate.value if estimate else None,
        "ci_low": estimate.low if estimate else None,
        "ci_high": estimate.high if estimate else None,
        "n": estimate.n if estimate else None,
        "best_config": headline.best_label,
        "train_loss": headline.train_loss,
        "eval_loss": headline.eval_loss,
    }


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested settings as dotted keys; lists and scalars as compact JSON."""
    flat: dict[str, str] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return flat


def config_diff(configs: list[dict[str, Any]], differences_only: bool = False) -> list[DiffRow]:
    """One row per setting any of the configs has, in first-seen order."""
    flats = [flatten(config) for config in configs]
    keys = list(dict.fromkeys(key for flat in flats for key in flat))
    rows = [DiffRow(key, [flat.get(key, MISSING) for flat in flats]) for key in keys]
    return [row for row in rows if row.differs] if differences_only else rows


def loss_curves(details: list[RunDetail]) -> list[dict[str, Any]]:
    """Train and eval loss per step of every tuning run (the last value logged at a step)."""
    points: list[dict[str, Any]] = []
    for detail in details:
        label = f"{detail.ref} {detail.entry.name}"
        for metric in ("loss", "eval_loss"):
            by_step = {
                p.step: getattr(p, metric) for p in detail.points if getattr(p, metric) is not None
            }
            points += [
                {"run": label, "step": step, "metric": metric, "value": value}
                for step, value in sorted(by_step.items())
            ]
    return points


def agreement_view(store: Store, details: list[RunDetail]) -> tuple[Agreement | None, str]:
    comparisons = [d for d in details if d.ref.kind == "comparison"]
    if len(comparisons) < 2:
        return None, "Agreement needs two or more comparison runs."
    first = comparisons[0].entry
    same = [d for d in comparisons if d.entry.dataset_hash == first.dataset_hash]
    excluded = [
        f"{d.ref}: dataset {d.entry.dataset} has other content than {first.dataset}"
        for d in comparisons
        if d not in same
    ]
    if len(same) < 2:
        return None, "The comparison runs are over different datasets; agreement needs the same."
    verdicts, golds, labels = [], {}, []
    for detail in same:
        best = _best_config(detail)
        if best is None:
            excluded.append(f"{detail.ref}: no scored rows yet")
            continue
        labels.append(f"{detail.ref} · {best}")
        rows = [r for r in detail.examples if r["config"] == best]
        verdicts.append({r["example_index"]: bool(r["correct"]) for r in rows})
        golds.update({r["example_index"]: r["gold"] for r in rows})
    if len(verdicts) < 2:
        return None, "Fewer than two runs with scored rows over the same dataset."
    shared = sorted(set.intersection(*(set(v) for v in verdicts)))
    table = [
        {
            "example_index": i,
            "gold": golds[i],
            **{lab: v[i] for lab, v in zip(labels, verdicts, strict=True)},
        }
        for i in shared
    ]
    pairwise = [
        (labels[a], labels[b], _share(verdicts[a], verdicts[b], shared))
        for a, b in combinations(range(len(labels)), 2)
    ]
    agreement = Agreement(
        dataset=first.dataset or "",
        dataset_hash=first.dataset_hash or "",
        runs=labels,
        rows=table,
        pairwise=pairwise,
        all_right=sum(all(v[i] for v in verdicts) for i in shared),
        all_wrong=sum(not any(v[i] for v in verdicts) for i in shared),
        excluded=excluded,
        paired=against_reference(
            [{i: float(v[i]) for i in shared} for v in verdicts],
            1,
            metric="accuracy",
            binary=True,
        ),
    )
    return agreement, f"{len(shared)} shared examples of {agreement.dataset}."


def _best_config(detail: RunDetail) -> str | None:
    scored = [s for s in detail.summaries if s.n]
    if not scored:
        return None
    best = max(scored, key=lambda s: (s.accuracy.value, -s.position))
    return f"C{best.position + 1}"


def _share(a: dict[int, bool], b: dict[int, bool], shared: list[int]) -> float:
    return sum(a[i] == b[i] for i in shared) / len(shared) if shared else float("nan")
