"""Preference pairs from a comparison run, and the versioned datasets the studio writes.

A generation run holds several answers to the same prompt: one per configuration, and with
repeated sampling several per configuration. `build_pairs` turns them into chosen/rejected pairs:

- by the run's metric: among the answers of one example (the samples of each configuration in a
  sampled run, else the configurations' answers), the best-scoring answer is chosen and the
  worst rejected, if their scores differ by more than `margin`;
- by the judge: a pairwise judge's win or loss (after both orders; ties and order-dependent
  verdicts make no pair) against the reference configuration; a pointwise judge's best against
  worst judge score, as for a metric.

The prompt is the exact text the model saw. Each pair keeps where its answers came from and
their scores; the rule, the source run and the margin are the dataset version's lineage.
`pairs_dataset` saves them, after a review, as a dataset version (studio/data/versions.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from studio.compare.judges import answer_of
from studio.data.versions import save_rows
from studio.hosting import HostingPolicy
from studio.store import ComparisonRun, DatasetVersion, Store
from studio.store.records import ComparisonResult

BY_JUDGE = "judge"


@dataclass(frozen=True)
class Pair:
    """One preference pair and where its answers came from (e.g. "C2", "C1 sample 3")."""

    example_index: int
    prompt: str
    chosen: str
    rejected: str
    chosen_from: str
    rejected_from: str
    chosen_score: float | None
    rejected_score: float | None


@dataclass(frozen=True)
class _Answer:
    text: str
    source: str
    score: float


def build_pairs(store: Store, run_id: int, by: str, margin: float = 0.0) -> list[Pair]:
    """Pairs from run `run_id` by its metric (`by` = the metric's name or "metric") or by its
    judge (`by` = "judge"); ValueError naming the fix when the run cannot give pairs."""
    run = store.get_comparison_run(run_id)
    if run is None:
        raise ValueError(f"comparison run #{run_id} does not exist (`studio runs list` lists them)")
    if run.scoring != "generate":
        raise ValueError(
            f"run #{run_id} scored choices by log-likelihood; pairs need generated answers. Fix: "
            "build pairs from a generation run (scoring: generate) with samples or two configs"
        )
    results = store.comparison_results(run_id)
    positions = {cfg.id: cfg.position for cfg in run.configs}
    if by == BY_JUDGE:
        return _by_judge(run, results, positions, margin)
    metric = str(run.config.get("metric") or "exact")
    if by not in ("metric", metric):
        raise ValueError(
            f"run #{run_id} was scored by {metric}, not {by}: pairs by metric use the run's own "
            f"scores. Fix: --by {metric} (or --by metric), or --by judge for a judged run"
        )
    return _by_scores(results, positions, margin)


def _by_scores(
    results: Sequence[ComparisonResult], positions: dict[int, int], margin: float
) -> list[Pair]:
    groups: dict[tuple[int, int], list[_Answer]] = defaultdict(list)
    prompts: dict[tuple[int, int], str] = {}
    for r in results:
        where = f"C{positions[r.config_id] + 1}"
        if r.samples:  # each configuration's own samples compete (same prompt)
            key = (r.example_index, r.config_id)
            for s in r.samples:
                source = f"{where} sample {s['sample']}"
                groups[key].append(_Answer(s["output"].strip(), source, float(s["score"])))
        else:  # the configurations' answers to the same example compete
            key = (r.example_index, -1)
            groups[key].append(_Answer(answer_of(r), where, float(r.score or 0.0)))
        prompts.setdefault(key, r.prompt_text)
    return _best_against_worst(groups, prompts, margin)


def _best_against_worst(
    groups: dict[tuple[int, int], list[_Answer]], prompts: dict[tuple[int, int], str], margin: float
) -> list[Pair]:
    pairs = []
    for key in sorted(groups):
        answers = groups[key]
        best = max(answers, key=lambda a: a.score)
        worst = min(answers, key=lambda a: a.score)
        if best.score - worst.score > margin and best.text != worst.text:
            pairs.append(
                Pair(key[0], prompts[key], best.text, worst.text, best.source, worst.source,
                     best.score, worst.score)
            )  # fmt: skip
    return pairs


def _by_judge(
    run: ComparisonRun,
    results: Sequence[ComparisonResult],
    positions: dict[int, int],
    margin: float,
) -> list[Pair]:
    if not run.judge:
        raise ValueError(
            f"run #{run.id} has no judge. Fix: build pairs by its metric (--by "
            f"{run.config.get('metric') or 'exact'}), or run it again with --judge"
        )
    judged = [r for r in results if r.judgement is not None]
    if run.judge["mode"] == "pointwise":
        groups: dict[tuple[int, int], list[_Answer]] = defaultdict(list)
        prompts: dict[tuple[int, int], str] = {}
        for r in judged:
            if r.judgement and r.judgement.get("score") is not None:
                where = f"C{positions[r.config_id] + 1}"
                groups[(r.example_index, -1)].append(
                    _Answer(answer_of(r), where, float(r.judgement["score"]))
                )
                prompts.setdefault((r.example_index, -1), r.prompt_text)
        return _best_against_worst(groups, prompts, margin)
    reference = int(run.config.get("reference") or 1) - 1
    refs = {r.example_index: r for r in results if positions[r.config_id] == reference}
    pairs = []
    for r in judged:
        outcome = (r.judgement or {}).get("outcome")
        other = refs.get(r.example_index)
        if outcome not in ("win", "loss") or other is None:
            continue
        this = _Answer(answer_of(r), f"C{positions[r.config_id] + 1}", 1.0)
        ref = _Answer(answer_of(other), f"C{reference + 1}", 0.0)
        best, worst = (this, ref) if outcome == "win" else (ref, this)
        if best.text != worst.text:
            pairs.append(
                Pair(r.example_index, r.prompt_text, best.text, worst.text, best.source,
                     worst.source, None, None)
            )  # fmt: skip
    return pairs


def pair_rows(pairs: Sequence[Pair]) -> list[dict[str, Any]]:
    """The rows of a pairs dataset: prompt/chosen/rejected, then where each answer came from."""
    return [asdict(p) for p in pairs]


def pairs_dataset(
    store: Store,
    policy: HostingPolicy,
    directory: Path,
    run_id: int,
    by: str,
    name: str,
    margin: float = 0.0,
    review: Review | None = None,
) -> DatasetVersion:
    """Build the pairs of run `run_id`, apply a review (pairs dropped or swapped, by their
    position in `build_pairs`' list) and save them as the next version of `name`. A public demo
    may not write datasets (every visitor shares the store)."""
    policy.check_shared_write("a preference dataset")
    pairs = build_pairs(store, run_id, by, margin)
    review = review or Review()
    kept = review.apply(pairs)
    lineage = {
        "source": f"c{run_id}",
        "rule": by,
        "margin": margin,
        "pairs_built": len(pairs),
        "dropped": sorted(review.drop),
        "swapped": sorted(review.swap),
    }
    return save_rows(store, policy, directory, name, "pairs", pair_rows(kept), lineage)


@dataclass(frozen=True)
class Review:
    """A reviewer's edits to built pairs: positions dropped, positions with chosen and rejected
    swapped (0-based, in `build_pairs` order)."""

    drop: frozenset[int] = frozenset()
    swap: frozenset[int] = frozenset()

    def apply(self, pairs: Sequence[Pair]) -> list[Pair]:
        unknown = sorted(i for i in self.drop | self.swap if not 0 <= i < len(pairs))
        if unknown:
            raise ValueError(
                f"review names pairs {unknown}, but there are {len(pairs)} (0 to "
                f"{len(pairs) - 1}). Fix: build the pairs again and review what is listed"
            )
        kept = []
        for i, pair in enumerate(pairs):
            if i in self.drop:
                continue
            if i in self.swap:
                pair = Pair(
                    pair.example_index, pair.prompt, pair.rejected, pair.chosen,
                    pair.rejected_from, pair.chosen_from, pair.rejected_score, pair.chosen_score,
                )  # fmt: skip
            kept.append(pair)
        return kept
