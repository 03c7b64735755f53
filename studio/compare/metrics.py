"""Scoring model answers, and the uncertainty that belongs with every score.

This module owns the per-example scores (exact match, containment, regex, token F1, ROUGE-L,
chrF and BLEU for open-ended answers, mapping a free generation onto a label, log-likelihood
accuracy acc / acc_norm, and acc after contextual calibration) and the statistics that
keep comparisons honest: a bootstrap confidence interval for a mean over examples and the spread
of a score across seeds.
"""

from __future__ import annotations

import functools
import math
import re
import string
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

_ASCII_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD-style: lowercase, delete punctuation, drop a/an/the, collapse whitespace.

    As in the SQuAD evaluation script punctuation is deleted, not replaced by a space
    ("don't" -> "dont"); unlike it, Unicode punctuation (’ “ — …) is deleted too.
    """
    text = "".join(ch for ch in text.lower() if not _is_punctuation(ch))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _is_punctuation(char: str) -> bool:
    # ASCII punctuation as in the SQuAD script (it includes symbols such as $ and +), plus every
    # Unicode punctuation character, so curly quotes and dashes do not turn a right answer wrong.
    return char in _ASCII_PUNCTUATION or unicodedata.category(char).startswith("P")


def exact_match(prediction: str, gold: str) -> bool:
    return normalize_answer(prediction) == normalize_answer(gold)


def contains(prediction: str, gold: str) -> bool:
    """The normalised gold occurs in the normalised prediction.

    An answer that normalises to nothing (e.g. "The.") only matches a prediction that does too;
    otherwise an empty string, a substring of everything, would mark every prediction right.
    """
    wanted = normalize_answer(gold)
    found = normalize_answer(prediction)
    return wanted in found if wanted else not found


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {pattern!r}: {exc}") from None


def regex_match(prediction: str, pattern: str) -> bool:
    """re.search of pattern in the raw prediction; an invalid pattern raises ValueError."""
    return _compile(pattern).search(prediction) is not None


def token_f1(prediction: str, gold: str) -> float:
    """SQuAD token F1: harmonic mean of token precision and recall after normalisation.

    When either side has no tokens the score is 1.0 if both are empty, else 0.0.
    """
    predicted = normalize_answer(prediction).split()
    wanted = normalize_answer(gold).split()
    if not predicted or not wanted:
        return float(predicted == wanted)
    same = sum((Counter(predicted) & Counter(wanted)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(wanted)
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, gold: str) -> float:
    """ROUGE-L F-measure (longest common subsequence of words, Porter-stemmed) from Google's
    `rouge-score` package, the implementation papers report; 0..1."""
    return float(_rouge_scorer().score(gold, prediction)["rougeL"].fmeasure)


@functools.lru_cache(maxsize=1)
def _rouge_scorer() -> Any:
    # lazy: rouge-score pulls in nltk; only open-ended scoring needs it
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def chrf(prediction: str, gold: str) -> float:
    """Sentence chrF (character n-gram F-score, β=2) from sacrebleu, scaled to 0..1."""
    # lazy: sacrebleu is only needed for open-ended scoring
    import sacrebleu

    return float(sacrebleu.sentence_chrf(prediction, [gold]).score) / 100


def bleu(prediction: str, gold: str) -> float:
    """Sentence BLEU from sacrebleu (exponential smoothing, effective n-gram order), 0..1.

    Per example, so it has an interval and a paired test like every metric; the mean of
    sentence BLEU is not corpus BLEU (which pools n-gram counts before the geometric mean).
    """
    # lazy: sacrebleu is only needed for open-ended scoring
    import sacrebleu

    return float(sacrebleu.sentence_bleu(prediction, [gold]).score) / 100


# Graded metrics (0..1) by name; an answer scoring PASS_MARK or more counts as right in the
# accuracy column (the mean score is the number to read for these).
GRADED_METRICS = {"f1": token_f1, "rouge_l": rouge_l, "chrf": chrf, "bleu": bleu}
PASS_MARK = 0.5


def first_choice_in(prediction: str, choices: Sequence[str]) -> str | None:
    """The choice a free generation names first (whole words, case-insensitive), or None.

    Turns "Sentiment: Positive, clearly." into "positive" when choices are
    ("negative", "positive"). At the same position the longer choice wins ("New York" over
    "New"); whitespace inside a choice matches any run of whitespace. Negation is not
    understood: "not positive" names "positive".
    """
    best: tuple[int, int] | None = None
    answer: str | None = None
    for choice in choices:
        words = choice.split()
        if not words:
            continue
        pattern = r"(?<!\w)" + r"\s+".join(map(re.escape, words)) + r"(?!\w)"
        match = re.search(pattern, prediction, flags=re.IGNORECASE)
        if match and (best is None or (match.start(), -len(match.group())) < best):
            best, answer = (match.start(), -len(match.group())), choice
    return answer


@dataclass(frozen=True)
class Estimate:
    """A mean over examples with its confidence interval (95% unless asked otherwise)."""

    value: float
    low: float
    high: float
    n: int


def bootstrap_ci(
    values: Sequence[float], n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0
) -> Estimate:
    """Percentile bootstrap interval for the mean of per-example scores.

    Resamples the examples with replacement n_resamples times using numpy's default_rng(seed),
    so the same scores and seed always give the same interval. With no values everything is
    nan; with one value (or all values equal) the interval has zero width.
    """
    data = np.asarray(values, dtype=float)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence={confidence} must be between 0 and 1")
    if n_resamples < 1:
        raise ValueError(f"n_resamples={n_resamples} must be at least 1")
    if np.isnan(data).any():
        raise ValueError("values contain nan; score every example before estimating")
    if data.size == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(data.mean())
    if data.size == 1 or data.min() == data.max():
        return Estimate(mean, mean, mean, int(data.size))
    means = _resampled_means(data, n_resamples, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Estimate(mean, float(low), float(high), int(data.size))


def _resampled_means(data: np.ndarray, n_resamples: int, seed: int) -> np.ndarray:
    # Vectorised in blocks of about four million draws, so 100k examples do not need gigabytes.
    rng = np.random.default_rng(seed)
    block = max(1, 4_000_000 // data.size)
    means = []
    for start in range(0, n_resamples, block):
        count = min(block, n_resamples - start)
        means.append(data[rng.integers(0, data.size, size=(count, data.size))].mean(axis=1))
    return np.concatenate(means)


@dataclass(frozen=True)
class SeedSummary:
    """A score across seeds (of shot sampling, or of training): mean and sample std."""

    mean: float
    std: float
    n_seeds: int
    values: tuple[float, ...]


def summarize_seeds(values: Sequence[float]) -> SeedSummary:
    """Mean and sample standard deviation (ddof=1; 0 for a single seed, nan for none)."""
    data = tuple(float(v) for v in values)
    if not data:
        return SeedSummary(math.nan, math.nan, 0, ())
    std = float(np.std(data, ddof=1)) if len(data) > 1 else 0.0
    return SeedSummary(float(np.mean(data)), std, len(data), data)


def accuracy_from_scores(
    choice_scores: Sequence[Sequence[float]], gold: Sequence[int]
) -> list[bool]:
    """acc: per example, whether the choice with the highest summed log-likelihood is gold.

    choice_scores[i][j] is log P(choice j | prompt i) summed over the choice's tokens. Ties go
    to the lower index (numpy argmax), as in lm-evaluation-harness.
    """
    if len(choice_scores) != len(gold):
        raise ValueError(f"{len(choice_scores)} score rows but {len(gold)} gold labels")
    results = []
    for i, (scores, answer) in enumerate(zip(choice_scores, gold, strict=True)):
        if not 0 <= answer < len(scores):
            raise ValueError(f"example {i}: gold index {answer} but {len(scores)} choices")
        results.append(int(np.argmax(scores)) == answer)
    return results


def acc_norm_predictions(
    choice_scores: Sequence[Sequence[float]], choice_lengths: Sequence[Sequence[int]]
) -> list[int]:
    """acc_norm's predictions: argmax of summed log-likelihood / length of the continuation.

    Length normalisation removes summed log-likelihood's bias towards short answers (every
    extra token adds a negative term). lm-evaluation-harness divides by
    `float(len(choice))` of the choice text: its length in characters, which equals its UTF-8
    length in bytes for ASCII text; pass `len(choice)` for numbers comparable with the harness
    (or `len(choice.encode())` for bytes). Compare the result with gold for acc_norm.
    """
    if len(choice_scores) != len(choice_lengths):
        raise ValueError(f"{len(choice_scores)} score rows but {len(choice_lengths)} length rows")
    predictions = []
    for i, (scores, lengths) in enumerate(zip(choice_scores, choice_lengths, strict=True)):
        if len(scores) != len(lengths) or min(lengths, default=0) <= 0:
            raise ValueError(f"example {i}: need one positive length per choice, got {lengths}")
        predictions.append(int(np.argmax(np.asarray(scores, float) / np.asarray(lengths, float))))
    return predictions


def calibration_prior(choice_logprobs: Sequence[Sequence[float]]) -> list[float]:
    """The label prior of contextual calibration (Zhao et al., 2021, "Calibrate before use"):
    for each content-free input the choices' probabilities normalised over the choices, then
    averaged over the inputs."""
    if not choice_logprobs:
        raise ValueError("calibration needs at least one content-free input")
    data = np.asarray(choice_logprobs, dtype=float)
    shifted = np.exp(data - data.max(axis=1, keepdims=True))
    probs = shifted / shifted.sum(axis=1, keepdims=True)
    return [float(p) for p in probs.mean(axis=0)]


def calibrated_prediction(logprobs: Sequence[float], prior: Sequence[float]) -> int:
    """argmax_j p(j | x) / prior_j — the paper's W = diag(prior)⁻¹, b = 0 — computed in logs as
    argmax_j (log p(j | x) − log prior_j); the normalisation of p cancels in the argmax."""
    if len(logprobs) != len(prior):
        raise ValueError(f"{len(logprobs)} choice scores but a prior over {len(prior)} choices")
    floor = np.log(np.maximum(np.asarray(prior, dtype=float), 1e-30))
    return int(np.argmax(np.asarray(logprobs, dtype=float) - floor))


def majority_answer(predictions: Sequence[str]) -> str:
    """The most frequent answer after normalisation (ties: the one seen first), as first written;
    the self-consistency vote over repeated samples."""
    keys = [normalize_answer(p) for p in predictions]
    counts = Counter(keys)
    best = max(range(len(keys)), key=lambda i: (counts[keys[i]], -i))
    return predictions[best]


def consistency(predictions: Sequence[str]) -> float:
    """Share of samples that give the majority answer (1.0: every sample agrees)."""
    keys = [normalize_answer(p) for p in predictions]
    return Counter(keys).most_common(1)[0][1] / len(keys)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k (Chen et al., 2021) from n samples of which c are right:
    1 - C(n-c, k) / C(n, k), computed as a product to stay exact for large n. Three lines,
    written here: the libraries that ship it pull in a code-execution harness."""
    if n - c < k:
        return 1.0
    return 1.0 - float(np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))
