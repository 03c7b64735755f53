"""The parity check of an export: the same comparison on the adapter and on the exported file.

A stored comparison run with two configurations, the adapter (reference, position 1) and the
export, scored by log-likelihood over the same examples through the comparison engine. Its
figures are the run's own: accuracy of each with a 95% bootstrap interval, the export's paired
difference to the adapter (studio/compare/summary.py `paired_summaries`), and the per-example
drift of the gold answer's log-probability (mean and max absolute difference).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.compare.config import build_config
from studio.compare.engine import ComparisonRunner, RowDone, RunFinished, RunStarted
from studio.compare.metrics import Estimate
from studio.compare.paired import Paired
from studio.compare.summary import paired_summaries, summarize_run
from studio.store import Store
from studio.store.records import ComparisonResult

PARITY_TAG = "export-parity"


@dataclass(frozen=True)
class Parity:
    """The adapter against its export, on the same rows of one comparison run."""

    run_id: int
    adapter_spec: str
    export_spec: str
    n: int
    adapter_accuracy: Estimate
    export_accuracy: Estimate
    paired: Paired  # export − adapter
    drift_mean: float  # mean |Δ log p(gold)| over the examples, in nats
    drift_max: float
    drift_n: int  # examples whose gold answer is one of the scored choices

    @property
    def within_noise(self) -> bool:
        """The paired difference's 95% interval holds 0: no difference the data can show."""
        return self.paired.difference.low <= 0.0 <= self.paired.difference.high

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "run": f"c{self.run_id}",
            "adapter": self.adapter_spec,
            "export": self.export_spec,
            "n": self.n,
            "adapter_accuracy": _estimate(self.adapter_accuracy),
            "export_accuracy": _estimate(self.export_accuracy),
            "paired": self.paired.as_dict(),
            "within_noise": self.within_noise,
            "logprob_drift": {
                "mean_abs": self.drift_mean,
                "max_abs": self.drift_max,
                "n": self.drift_n,
                "unit": "nats",
            },
        }

    def lines(self) -> list[str]:
        """What the CLI prints and the UI shows."""
        d = self.paired.difference
        verdict = "within noise" if self.within_noise else "a real difference"
        return [
            f"parity run c{self.run_id}: {self.n} examples, log-likelihood scoring",
            f"  adapter  {self.adapter_spec}: accuracy {_pct(self.adapter_accuracy)}",
            f"  export   {Path(self.export_spec).name}: accuracy {_pct(self.export_accuracy)}",
            f"  paired difference (export − adapter): {d.value * 100:+.1f} pts "
            f"[{d.low * 100:+.1f}, {d.high * 100:+.1f}], {self.paired.test} "
            f"p={self.paired.p_value:.3g}: {verdict}",
            f"  log p(gold) drift: mean {self.drift_mean:.4f}, max {self.drift_max:.4f} nats "
            f"over {self.drift_n} examples",
        ]


def run_parity(
    runner: ComparisonRunner,
    store: Store,
    adapter_spec: str,
    export_spec: str,
    data: str,
    template: str,
    limit: int | None = None,
    progress: Callable[[str], None] | None = None,
) -> Parity:
    """Compare the adapter (reference) and its export on `data` with `template`; stored."""
    config = build_config(
        name=f"export parity: {Path(adapter_spec).name} vs {Path(export_spec).name}",
        data=data,
        templates=[template],
        models=[adapter_spec, export_spec],
        scoring="loglik",
        limit=limit,
    )
    run_id = _run(runner.run(config), progress)
    summaries = sorted(summarize_run(store, run_id), key=lambda s: s.position)
    paired = paired_summaries(store, run_id, reference=1)[1]
    assert paired is not None  # position 2 against position 1
    mean, worst, n = logprob_drift(store, run_id)
    return Parity(
        run_id=run_id,
        adapter_spec=adapter_spec,
        export_spec=export_spec,
        n=summaries[0].n,
        adapter_accuracy=summaries[0].accuracy,
        export_accuracy=summaries[1].accuracy,
        paired=paired,
        drift_mean=mean,
        drift_max=worst,
        drift_n=n,
    )


def _run(events: Iterable[Any], progress: Callable[[str], None] | None) -> int:
    run_id, finished = None, None
    for event in events:
        if isinstance(event, RunStarted):
            run_id = event.run_id
        elif isinstance(event, RowDone) and progress and event.done % 25 == 0:
            progress(f"parity check: {event.done}/{event.total} rows")
        elif isinstance(event, RunFinished):
            finished = event
    if finished is None or finished.status != "completed" or run_id is None:
        why = finished.error if finished else "no result"
        raise RuntimeError(f"the parity comparison did not complete: {why}")
    return run_id


def logprob_drift(store: Store, run_id: int) -> tuple[float, float, int]:
    """Mean and max |log p(gold | export) − log p(gold | adapter)| over the run's examples."""
    run = store.get_comparison_run(run_id)
    if run is None:
        raise ValueError(f"comparison run #{run_id} does not exist")
    ordered = sorted(run.configs, key=lambda c: c.position)
    by_config: dict[int, dict[int, float]] = {cfg.id: {} for cfg in ordered}
    for result in store.comparison_results(run_id):
        gold = gold_logprob(result)
        if gold is not None:
            by_config[result.config_id][result.example_index] = gold
    reference, export = (by_config[cfg.id] for cfg in ordered[:2])
    gaps = [abs(export[i] - reference[i]) for i in reference.keys() & export.keys()]
    if not gaps:
        return 0.0, 0.0, 0
    return sum(gaps) / len(gaps), max(gaps), len(gaps)


def gold_logprob(result: ComparisonResult) -> float | None:
    """The log-probability the model gave the gold answer among the scored choices."""
    for score in result.choice_scores or []:
        if score.get("choice") == result.gold:
            return float(score["logprob"])
    return None


def _estimate(e: Estimate) -> dict[str, float | int]:
    return {"value": e.value, "low": e.low, "high": e.high, "n": e.n}


def _pct(e: Estimate) -> str:
    return f"{e.value * 100:.1f}% [{e.low * 100:.1f}, {e.high * 100:.1f}]"
