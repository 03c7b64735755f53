"""Paired comparisons: is configuration B really better than reference A on the same examples?

Two configurations that scored the same examples are compared example by example, which is far
more sensitive than comparing two independent intervals (most of the noise is which examples are
hard, and that noise cancels). For every configuration against the reference:

- the mean difference (this − reference) with a 95% paired bootstrap interval: the examples are
  resampled together, so each resample keeps the pairing (`bootstrap_ci` over the differences);
- a p-value: McNemar's exact test for right/wrong outcomes (a binomial test on the discordant
  pairs, via statsmodels), with the discordant counts shown; for graded scores (F1, ROUGE-L, chrF,
  BLEU) a paired permutation test that flips the sign of each difference (scipy), exact for up to
  ~13 examples and 9,999 seeded resamples beyond;
- with more than one comparison against the same reference, the p-values adjusted by Holm's
  step-down method (statsmodels), which controls the family-wise error rate; `p_adjusted` says so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from studio.compare.metrics import Estimate, bootstrap_ci

MCNEMAR = "mcnemar-exact"
PERMUTATION = "paired-permutation"
PERMUTATION_RESAMPLES = 9_999


@dataclass(frozen=True)
class Paired:
    """One configuration against the reference, over the examples both scored."""

    reference: int  # 1-based position of the reference configuration
    metric: str  # "accuracy", or the graded metric's name
    n: int
    difference: Estimate  # mean(this − reference), 95% paired bootstrap interval
    test: str  # MCNEMAR or PERMUTATION
    p_value: float
    p_adjusted: float | None = None  # Holm, when several configurations face one reference
    discordant: tuple[int, int] | None = None  # (only this right, only the reference right)

    def as_dict(self) -> dict[str, object]:
        """The `paired` object of `studio compare --json`."""
        return {
            "reference": self.reference,
            "metric": self.metric,
            "n": self.n,
            "difference": self.difference.value,
            "ci_low": self.difference.low,
            "ci_high": self.difference.high,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "adjustment": "holm" if self.p_adjusted is not None else None,
            "test": self.test,
            "discordant": list(self.discordant) if self.discordant is not None else None,
        }


def mcnemar_exact(only_this: int, only_reference: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (1.0 when there are none)."""
    # lazy: statsmodels takes a second to import; only paired summaries need it
    from statsmodels.stats.contingency_tables import mcnemar

    if only_this + only_reference == 0:
        return 1.0
    table = [[0, only_this], [only_reference, 0]]
    return float(mcnemar(table, exact=True).pvalue)


def permutation_p(differences: Sequence[float], seed: int = 0) -> float:
    """Two-sided p-value of a mean paired difference by flipping signs (1.0 when all are 0)."""
    # lazy: scipy.stats is slow to import; only paired summaries need it
    from scipy.stats import permutation_test

    data = np.asarray(differences, dtype=float)
    if data.size == 0 or not data.any():
        return 1.0
    result = permutation_test(
        (data,),
        np.mean,
        permutation_type="samples",
        n_resamples=PERMUTATION_RESAMPLES,
        alternative="two-sided",
        random_state=seed,
    )
    return float(min(1.0, result.pvalue))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values, in the order given."""
    # lazy: statsmodels takes a second to import; only paired summaries need it
    from statsmodels.stats.multitest import multipletests

    if not p_values:
        return []
    return [float(p) for p in multipletests(list(p_values), method="holm")[1]]


def paired_difference(
    this: Mapping[int, float],
    reference: Mapping[int, float],
    *,
    reference_position: int,
    metric: str,
    binary: bool,
    seed: int = 0,
) -> Paired:
    """`this` against `reference`, both keyed by example index, over the examples both have."""
    shared = sorted(set(this) & set(reference))
    ours = np.asarray([this[i] for i in shared], dtype=float)
    theirs = np.asarray([reference[i] for i in shared], dtype=float)
    differences = ours - theirs
    estimate = bootstrap_ci(differences.tolist(), seed=seed)
    if binary:
        only_this = int(((ours > 0) & (theirs <= 0)).sum())
        only_reference = int(((ours <= 0) & (theirs > 0)).sum())
        p_value = mcnemar_exact(only_this, only_reference) if shared else math.nan
        return Paired(
            reference_position,
            metric,
            len(shared),
            estimate,
            MCNEMAR,
            p_value,
            discordant=(only_this, only_reference),
        )
    p_value = permutation_p(differences.tolist(), seed) if shared else math.nan
    return Paired(reference_position, metric, len(shared), estimate, PERMUTATION, p_value)


def against_reference(
    outcomes: Sequence[Mapping[int, float]],
    reference: int,
    *,
    metric: str,
    binary: bool,
    seed: int = 0,
) -> list[Paired | None]:
    """Every configuration's outcomes against `outcomes[reference - 1]` (None for the reference
    itself); with more than one comparison the p-values are Holm-adjusted as a family."""
    if not 1 <= reference <= len(outcomes):
        raise ValueError(
            f"reference configuration {reference} does not exist; choose 1 to {len(outcomes)}"
        )
    base = outcomes[reference - 1]
    found: list[Paired | None] = [
        None
        if position == reference
        else paired_difference(
            this, base, reference_position=reference, metric=metric, binary=binary, seed=seed
        )
        for position, this in enumerate(outcomes, start=1)
    ]
    tested = [p for p in found if p is not None and not math.isnan(p.p_value)]
    if len(tested) < 2:
        return found
    adjusted = iter(holm([p.p_value for p in tested]))
    return [
        replace(p, p_adjusted=next(adjusted)) if p is not None and not math.isnan(p.p_value) else p
        for p in found
    ]
