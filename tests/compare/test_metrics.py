"""Answer scores and their uncertainty, on hand-checked values."""

from __future__ import annotations

import math

import pytest

from studio.compare.metrics import (
    Estimate,
    acc_norm_predictions,
    accuracy_from_scores,
    bootstrap_ci,
    contains,
    exact_match,
    first_choice_in,
    normalize_answer,
    regex_match,
    summarize_seeds,
    token_f1,
)


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   apple, a day ", "apple day"),
        ("Theatre", "theatre"),
        ("don't", "dont"),
        ("“Paris” — France…", "paris france"),
        ("", ""),
    ],
)
def test_normalize_answer(raw: str, normalised: str) -> None:
    assert normalize_answer(raw) == normalised


def test_exact_match_and_contains() -> None:
    assert exact_match("The Paris.", "paris")
    assert not exact_match("Paris, France", "Paris")
    assert contains("It is Paris, France.", "paris")
    assert not contains("Parisian", "paris france")
    assert not contains("anything at all", "The.")  # an answer that normalises to nothing
    assert contains("", "a")


def test_regex_match() -> None:
    assert regex_match("Answer: 42 apples", r"\b42\b")
    assert not regex_match("Answer: 420", r"\b42\b")
    with pytest.raises(ValueError, match=r"invalid regular expression '\(unclosed'"):
        regex_match("x", "(unclosed")


def test_token_f1_known_values() -> None:
    assert token_f1("the cat sat", "cat sat down") == pytest.approx(0.8)
    assert token_f1("cat", "cat sat down") == pytest.approx(0.5)
    assert token_f1("Cat sat.", "the cat sat") == 1.0
    assert token_f1("dog", "cat") == 0.0
    assert token_f1("the", "a") == 1.0 and token_f1("the", "cat") == 0.0
    assert token_f1("cat cat", "cat") == pytest.approx(2 / 3)


def test_first_choice_in() -> None:
    labels = ["negative", "positive"]
    assert first_choice_in("Sentiment: Positive. Not negative.", labels) == "positive"
    assert first_choice_in("negative, then positive", labels) == "negative"
    assert first_choice_in("The review is postive", labels) is None
    assert first_choice_in("nonnegative", labels) is None
    assert first_choice_in("I live in New  York", ["New", "New York"]) == "New York"
    assert first_choice_in("yes", []) is None


def test_bootstrap_ci_is_seeded_and_contains_the_mean() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 0.0, 1.0, 1.0, 1.0] * 5
    estimate = bootstrap_ci(values, seed=7)
    assert estimate == bootstrap_ci(values, seed=7)
    assert estimate != bootstrap_ci(values, seed=8)
    # 0/1 scores give coarse intervals that an unseeded run can repeat by chance; 50 distinct
    # scores move both ends with every resample, so only a seeded run repeats itself exactly.
    fine = [(i * 37 % 101) / 100 for i in range(50)]
    runs = [bootstrap_ci(fine, n_resamples=300, seed=seed) for seed in (1, 1, 2, 3)]
    assert runs[0] == runs[1] and len(set(runs)) == 3
    assert estimate.value == pytest.approx(0.7) and estimate.n == 50
    assert estimate.low < estimate.value < estimate.high
    assert estimate.low > 0.5 and estimate.high < 0.85


def test_bootstrap_ci_narrows_with_more_data() -> None:
    small = bootstrap_ci([1.0, 0.0] * 10)
    large = bootstrap_ci([1.0, 0.0] * 1000)
    assert large.high - large.low < (small.high - small.low) / 4
    wide = bootstrap_ci([1.0, 0.0] * 10, confidence=0.99)
    assert wide.high - wide.low > small.high - small.low


def test_bootstrap_ci_edge_cases() -> None:
    assert bootstrap_ci([0.3] * 40) == Estimate(0.3, 0.3, 0.3, 40)
    assert bootstrap_ci([0.25]) == Estimate(0.25, 0.25, 0.25, 1)
    empty = bootstrap_ci([])
    assert empty.n == 0 and math.isnan(empty.value) and math.isnan(empty.low)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 0.0], confidence=95)


def test_summarize_seeds() -> None:
    summary = summarize_seeds([0.6, 0.7, 0.8])
    assert summary.mean == pytest.approx(0.7) and summary.std == pytest.approx(0.1)
    assert summary.n_seeds == 3 and summary.values == (0.6, 0.7, 0.8)
    assert summarize_seeds([0.5]).std == 0.0
    assert summarize_seeds([]).n_seeds == 0


def test_acc_and_acc_norm_disagree_on_a_constructed_case() -> None:
    # Choice 0 is short ("no", 2 characters) and choice 1 long ("not at all", 10): summed
    # log-likelihood favours the short one, per-character log-likelihood the long one.
    choices = ["no", "not at all"]
    scores = [[-3.0, -5.0]]
    lengths = [[len(choice) for choice in choices]]
    assert accuracy_from_scores(scores, [0]) == [True]
    assert acc_norm_predictions(scores, lengths) == [1]
    assert accuracy_from_scores([[-1.0, -2.0], [-4.0, -1.0]], [0, 0]) == [True, False]
    with pytest.raises(ValueError, match="gold index 2"):
        accuracy_from_scores(scores, [2])
    with pytest.raises(ValueError, match="positive length"):
        acc_norm_predictions(scores, [[2, 0]])
