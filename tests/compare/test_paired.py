"""Paired differences against a reference configuration: each statistic checked against values
computed independently (by hand, by exhaustive enumeration, or by scipy's own routines)."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest
from scipy.stats import bootstrap as scipy_bootstrap

from studio.compare.paired import (
    MCNEMAR,
    PERMUTATION,
    against_reference,
    holm,
    mcnemar_exact,
    paired_difference,
    permutation_p,
)


def test_mcnemar_exact_equals_the_binomial_tail_by_hand() -> None:
    # 10 examples only the new configuration gets right, 2 only the reference does:
    # p = 2 · P(X <= 2 | n=12, 1/2) = 2 · (1 + 12 + 66) / 4096.
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096)
    assert mcnemar_exact(2, 10) == pytest.approx(158 / 4096)
    assert mcnemar_exact(0, 0) == 1.0
    for b, c in [(1, 0), (5, 5), (30, 17), (3, 12)]:
        assert mcnemar_exact(b, c) == pytest.approx(binomtest(b, b + c, 0.5).pvalue)


def test_permutation_p_equals_exhaustive_sign_flips() -> None:
    differences = [0.5, 0.2, -0.1, 0.4, 0.0, 0.3, -0.2, 0.6, 0.1]
    observed = abs(np.mean(differences))
    flips = list(itertools.product((1, -1), repeat=len(differences)))
    extreme = sum(
        abs(np.mean(np.multiply(differences, signs))) >= observed - 1e-12 for signs in flips
    )
    assert permutation_p(differences) == pytest.approx(extreme / len(flips))
    assert permutation_p([0.0, 0.0, 0.0]) == 1.0


def test_permutation_p_is_seeded_beyond_exact_sizes() -> None:
    rng = np.random.default_rng(3)
    differences = (rng.normal(0.05, 0.3, size=60)).tolist()
    assert permutation_p(differences, seed=1) == permutation_p(differences, seed=1)
    assert permutation_p(differences, seed=1) != permutation_p(differences, seed=2)


def test_holm_by_hand() -> None:
    # sorted 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → monotone 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])
    assert holm([]) == []


def scipy_paired_interval(ours: np.ndarray, theirs: np.ndarray) -> Any:
    """scipy's 95% percentile bootstrap interval of mean(ours − theirs), resampling pairs."""
    return scipy_bootstrap(
        (ours, theirs),
        lambda a, b, axis: np.mean(a - b, axis=axis),
        paired=True,
        method="percentile",
        n_resamples=4000,
        random_state=0,
    ).confidence_interval


def verdicts(seed: int, n: int, p: float) -> dict[int, float]:
    rng = np.random.default_rng(seed)
    return {i: float(v) for i, v in enumerate(rng.random(n) < p)}


def test_binary_difference_counts_discordant_pairs_and_matches_scipy_bootstrap() -> None:
    reference, this = verdicts(1, 300, 0.6), verdicts(2, 300, 0.7)
    paired = paired_difference(
        this, reference, reference_position=1, metric="accuracy", binary=True
    )
    only_this = sum(this[i] > reference[i] for i in reference)
    only_reference = sum(this[i] < reference[i] for i in reference)
    assert paired.test == MCNEMAR and paired.n == 300
    assert paired.discordant == (only_this, only_reference)
    assert paired.difference.value == pytest.approx((only_this - only_reference) / 300)
    assert paired.p_value == pytest.approx(binomtest(only_this, only_this + only_reference).pvalue)
    ours = np.array([this[i] for i in range(300)])
    theirs = np.array([reference[i] for i in range(300)])
    expected = scipy_paired_interval(ours, theirs)
    # Two independent resamplings of the same pairs: equal up to Monte Carlo noise.
    assert paired.difference.low == pytest.approx(expected.low, abs=0.012)
    assert paired.difference.high == pytest.approx(expected.high, abs=0.012)


def test_pairing_is_by_example_index_over_the_examples_both_scored() -> None:
    reference = {0: 1.0, 1: 0.0, 2: 1.0, 3: 0.0}
    this = {3: 1.0, 2: 1.0, 1: 1.0, 9: 0.0}  # another order; 9 was never scored by the reference
    paired = paired_difference(
        this, reference, reference_position=1, metric="accuracy", binary=True
    )
    assert paired.n == 3
    assert paired.discordant == (2, 0)
    assert paired.difference.value == pytest.approx(2 / 3)


def test_graded_scores_use_the_permutation_test() -> None:
    reference = {i: 0.2 + 0.01 * (i % 7) for i in range(40)}
    this = {i: v + 0.05 for i, v in reference.items()}
    paired = paired_difference(this, reference, reference_position=2, metric="f1", binary=False)
    assert paired.test == PERMUTATION and paired.discordant is None
    assert paired.difference.value == pytest.approx(0.05)
    assert paired.p_value < 0.001  # every difference has the same sign


def test_against_reference_skips_the_reference_and_holm_adjusts_the_family() -> None:
    outcomes = [verdicts(s, 200, p) for s, p in ((1, 0.5), (2, 0.6), (3, 0.55), (4, 0.7))]
    found = against_reference(outcomes, 2, metric="accuracy", binary=True)
    assert found[1] is None
    others = [p for p in found if p is not None]
    assert [p.reference for p in others] == [2, 2, 2]
    expected = holm([p.p_value for p in others])
    assert [p.p_adjusted for p in others] == pytest.approx(expected)
    assert all(p.p_adjusted >= p.p_value for p in others)
    assert others[0].as_dict()["adjustment"] == "holm"


def test_one_comparison_is_not_adjusted_and_a_bad_reference_names_the_range() -> None:
    [first, second] = against_reference(
        [verdicts(1, 50, 0.5), verdicts(2, 50, 0.5)], 1, metric="accuracy", binary=True
    )
    assert first is None and second is not None and second.p_adjusted is None
    with pytest.raises(ValueError, match="choose 1 to 2"):
        against_reference([{}, {}], 3, metric="accuracy", binary=True)


def test_no_shared_examples_gives_nan_not_a_number_that_looks_real() -> None:
    paired = paired_difference(
        {0: 1.0}, {1: 1.0}, reference_position=1, metric="accuracy", binary=True
    )
    assert paired.n == 0 and math.isnan(paired.p_value) and math.isnan(paired.difference.value)
