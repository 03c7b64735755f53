"""Few-shot demonstrations: which pool rows are shown before each evaluation example.

This module owns choosing the k shots for an example (first, seeded random, label-balanced or
most similar), the leak guard that never shows an example its own answer, and the check that a
shot pool and an evaluation set are disjoint.
"""

from __future__ import annotations

import itertools
import math
import random
import re
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal, get_args

import numpy as np

from studio.datasets import Dataset, content_key, overlapping_rows

Strategy = Literal["first", "random", "balanced", "similar"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
_WORD = re.compile(r"\w+")


class ShotSelector:
    """Picks k demonstrations from a pool for each evaluation example.

    - first: the first k pool rows.
    - random: k rows in an order shuffled once with random.Random(seed).
    - balanced: round-robin over the labels (sorted), each label's rows in seeded-random order.
    - similar: the k pool rows nearest to the example by TF-IDF cosine over text_columns (see
      _TfidfIndex); needs label_column or text_columns so the answer is never compared.

    text_columns defaults to every all-text column except label_column.

    The first three are `shared`: every example gets the same shots, so the engine can reuse the
    prompt prefix. The leak guard is the exception: a pool row equal to the example (on
    text_columns, or on all columns when there are no text columns) is never shown to it, and
    the next candidate takes its place, for that example only.
    """

    def __init__(
        self,
        pool: Sequence[Mapping[str, Any]],
        k: int,
        strategy: Strategy = "first",
        seed: int = 0,
        label_column: str | None = None,
        text_columns: Sequence[str] | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
            )
        if isinstance(k, bool) or not isinstance(k, int) or k < 0:
            raise ValueError(f"k={k!r} must be a whole number of shots, 0 or more")
        self.pool = [dict(row) for row in pool]
        self.k, self.strategy, self.seed = k, strategy, seed
        self.label_column = label_column
        columns = list(dict.fromkeys(key for row in self.pool for key in row))
        self._check_columns(columns, text_columns)
        self.text_columns = (
            list(text_columns)
            if text_columns is not None
            else _string_columns(self.pool, columns, label_column)
        )
        self.shared = strategy != "similar"
        self._key_columns = self.text_columns or columns
        self._keys = [content_key(row, self._key_columns) for row in self.pool]
        self._prepare()

    def _check_columns(self, columns: list[str], text_columns: Sequence[str] | None) -> None:
        # The label only matters to 'balanced'; elsewhere a stale label name is harmless.
        uses_label = self.strategy == "balanced" and self.label_column
        wanted = list(text_columns or []) + ([self.label_column] if uses_label else [])
        missing = [column for column in wanted if column not in columns]
        if missing:
            raise ValueError(
                f"shot pool has no column(s) {', '.join(map(repr, missing))}; "
                f"columns are: {', '.join(columns) or '(none)'}"
            )
        if self.strategy == "balanced" and self.label_column is None:
            raise ValueError(
                "strategy 'balanced' needs to know the labels; pass label_column='<column>'"
            )
        if self.strategy == "similar" and self.label_column is None and text_columns is None:
            # Otherwise the example's own answer would be part of the similarity query and pull
            # in shots with the same answer: a leak that inflates few-shot accuracy.
            raise ValueError(
                "strategy 'similar' must not compare answers; pass label_column='<answer column>' "
                "or text_columns=[...] naming the input columns"
            )

    def _prepare(self) -> None:
        """Precompute the candidate order (or the similarity index) once for all examples."""
        self._order = list(range(len(self.pool)))
        self._by_label: list[list[int]] = []
        self._index: _TfidfIndex | None = None
        usable, what = len(self.pool), "shot pool"
        if self.strategy == "random":
            random.Random(self.seed).shuffle(self._order)
        elif self.strategy == "balanced":
            self._by_label = self._label_queues()
            usable, what = sum(map(len, self._by_label)), "labelled shot pool"
        elif self.strategy == "similar" and self.k > 0:
            if not self.text_columns:
                raise ValueError("strategy 'similar' needs text; pass text_columns=[...]")
            self._index = _TfidfIndex([self._texts(row) for row in self.pool])
        if self.k > usable:
            raise ValueError(
                f"k={self.k} shots requested but the {what} has only {usable} rows; "
                "lower k or use a larger pool"
            )

    def _label_queues(self) -> list[list[int]]:
        assert self.label_column is not None
        by_label: dict[Any, list[int]] = {}
        for index, row in enumerate(self.pool):
            if row.get(self.label_column) is not None:
                by_label.setdefault(row[self.label_column], []).append(index)
        rng = random.Random(self.seed)
        queues = []
        for label in sorted(by_label, key=_label_sort_key):
            rng.shuffle(by_label[label])
            queues.append(by_label[label])
        return queues

    def _texts(self, row: Mapping[str, Any]) -> list[str]:
        return [str(row[c]) for c in self.text_columns if row.get(c) is not None]

    def select(self, example: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Copies of the k shots for this example, in prompt order."""
        if self.k == 0:
            return []
        banned = content_key(example, self._key_columns)
        if self.strategy == "balanced":
            chosen = _round_robin(self._by_label, self._keys, banned, self.k)
        else:
            order = self._order if self._index is None else self._index.rank(self._texts(example))
            allowed = (i for i in order if self._keys[i] != banned)
            chosen = list(itertools.islice(allowed, self.k))
        if len(chosen) < self.k:
            raise ValueError(
                f"k={self.k} shots requested but only {len(chosen)} pool rows differ from this "
                "example (copies of it are never shown as its own shots); lower k or enlarge "
                "the pool"
            )
        return [dict(self.pool[i]) for i in chosen]


def _round_robin(queues: list[list[int]], keys: list[str], banned: str, k: int) -> list[int]:
    """One row per label in turn (labels in sorted order) until k rows; skips leaking rows."""
    iterators: list[Iterator[int]] = [(i for i in queue if keys[i] != banned) for queue in queues]
    chosen: list[int] = []
    while iterators and len(chosen) < k:
        for iterator in list(iterators):
            index = next(iterator, None)
            if index is None:
                iterators.remove(iterator)
            elif len(chosen) < k:
                chosen.append(index)
    return chosen


def _label_sort_key(label: Any) -> tuple[int, Any]:
    # Numbers sort numerically and strings alphabetically; mixed kinds never compare directly.
    if isinstance(label, (int, float)) and not isinstance(label, bool):
        return (0, label)
    return (1, str(label))


def _string_columns(
    pool: list[dict[str, Any]], columns: list[str], label_column: str | None
) -> list[str]:
    """Columns whose values are all text (ignoring gaps), except the label."""
    result = []
    for column in columns:
        values = [row.get(column) for row in pool if row.get(column) is not None]
        if column != label_column and values and all(isinstance(v, str) for v in values):
            result.append(column)
    return result


class _TfidfIndex:
    """TF-IDF cosine over word unigrams + bigrams: the 'similar' strategy's notion of near.

    Why lexical TF-IDF and not embeddings: it is cheap, deterministic and fully offline (an
    embedding model would need weights we cannot download at run time), and lexical overlap is a
    strong signal for picking nearest-neighbour demonstrations in classification and QA.
    Tokens are lowercased \\w+ runs; tf is sublinear (1 + log tf) and idf smoothed,
    log((1 + n) / (1 + df)) + 1, as in scikit-learn. The pool matrix is stored once as
    per-term posting arrays (a sparse column layout), so a 20k-row pool with a large vocabulary
    costs memory proportional to its text, not rows x vocabulary. Ties keep pool order.
    """

    def __init__(self, documents: list[list[str]]) -> None:
        counts = [_features(texts) for texts in documents]
        self._size = len(counts)
        df = Counter(term for document in counts for term in document)
        self._idf = {t: math.log((1 + self._size) / (1 + c)) + 1 for t, c in df.items()}
        rows: dict[str, list[int]] = {}
        weights: dict[str, list[float]] = {}
        for row, document in enumerate(counts):
            for term, weight in self._weigh(document).items():
                rows.setdefault(term, []).append(row)
                weights.setdefault(term, []).append(weight)
        self._postings = {
            term: (np.array(rows[term], dtype=np.int64), np.array(weights[term])) for term in rows
        }

    def _weigh(self, counts: Counter[str]) -> dict[str, float]:
        """L2-normalised sublinear tf-idf; terms unknown to the pool are dropped."""
        weights = {t: (1 + math.log(c)) * self._idf[t] for t, c in counts.items() if t in self._idf}
        norm = math.sqrt(sum(w * w for w in weights.values()))
        return {t: w / norm for t, w in weights.items()} if norm else {}

    def rank(self, texts: list[str]) -> list[int]:
        """Pool row indices, most similar first (stable, so equal scores keep pool order)."""
        scores = np.zeros(self._size)
        for term, weight in self._weigh(_features(texts)).items():
            rows, values = self._postings[term]
            scores[rows] += weight * values
        return np.argsort(-scores, kind="stable").tolist()


def _features(texts: list[str]) -> Counter[str]:
    """Unigram and bigram counts; bigrams never cross from one column into the next."""
    counts: Counter[str] = Counter()
    for text in texts:
        tokens = _WORD.findall(text.lower())
        counts.update(tokens)
        counts.update(f"{a} {b}" for a, b in itertools.pairwise(tokens))
    return counts


def check_disjoint(
    pool: Sequence[Mapping[str, Any]] | Dataset,
    evaluation: Sequence[Mapping[str, Any]] | Dataset,
    key_columns: Sequence[str] | None = None,
) -> None:
    """Raise ValueError when evaluation rows also occur in the shot pool.

    Rows are compared on key_columns, or on the columns both sides have.
    """
    pool_rows = pool.rows if isinstance(pool, Dataset) else pool
    eval_rows = evaluation.rows if isinstance(evaluation, Dataset) else evaluation
    shared = overlapping_rows(pool_rows, eval_rows, key_columns)
    if not shared:
        return
    sample = next((v for v in shared[0].values() if isinstance(v, str)), str(shared[0]))
    sample = sample if len(sample) <= 60 else sample[:57] + "..."
    raise ValueError(
        f"shot pool and evaluation set share {len(shared)} "
        f"{'row' if len(shared) == 1 else 'rows'} (e.g. {sample!r}); "
        "use separate files or split one file with split_dataset"
    )
