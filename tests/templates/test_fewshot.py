"""Choosing few-shot demonstrations: strategies, the leak guard, the pool/evaluation check."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from studio.datasets import dataset_from_rows, load_dataset, split_dataset
from studio.hosting import HostingPolicy
from studio.templates.fewshot import ShotSelector, check_disjoint
from tests import needs
from tests.conftest import ROOT, SHARED_DATA

DESKTOP = HostingPolicy.desktop()

SAMPLE = ROOT / "studio" / "samples" / "reviews.csv"
POOL: list[dict[str, Any]] = [
    {"text": f"review number {i}", "label": "pos" if i % 3 else "neg"} for i in range(30)
]
EXAMPLE = {"text": "a new review", "label": "pos"}


@pytest.mark.parametrize("strategy", ["first", "random", "balanced", "similar"])
def test_every_strategy_returns_k_rows(strategy: str) -> None:
    selector = ShotSelector(POOL, 4, strategy, label_column="label")  # type: ignore[arg-type]
    shots = selector.select(EXAMPLE)
    assert len(shots) == 4 and all(shot in POOL for shot in shots)
    assert selector.shared == (strategy != "similar")
    assert ShotSelector(POOL, 0, strategy, label_column="label").select(EXAMPLE) == []  # type: ignore[arg-type]


def test_first_takes_the_pool_head_and_copies_it() -> None:
    shots = ShotSelector(POOL, 3).select(EXAMPLE)
    assert shots == POOL[:3]
    shots[0]["text"] = "changed"
    assert POOL[0]["text"] == "review number 0"


def test_random_is_seeded_and_shared() -> None:
    def pick(seed: int, example: dict[str, str]) -> list[dict[str, str]]:
        return ShotSelector(POOL, 5, "random", seed=seed).select(example)

    assert pick(1, EXAMPLE) == pick(1, EXAMPLE) == pick(1, {"text": "something else"})
    assert pick(1, EXAMPLE) != pick(2, EXAMPLE)
    assert pick(1, EXAMPLE) != POOL[:5]
    # 30!/25! orders of 5: five seeds agreeing (or one seed answering twice differently) is a bug.
    assert len({tuple(shot["text"] for shot in pick(seed, EXAMPLE)) for seed in range(5)}) == 5


def test_balanced_is_seeded_within_each_label() -> None:
    def pick(seed: int) -> tuple[str, ...]:
        selector = ShotSelector(POOL, 6, "balanced", seed=seed, label_column="label")
        return tuple(shot["text"] for shot in selector.select(EXAMPLE))

    assert pick(3) == pick(3)
    assert len({pick(seed) for seed in range(5)}) == 5  # 10 neg and 20 pos rows to draw 3 of each


def test_balanced_covers_labels_evenly() -> None:
    shots = ShotSelector(POOL, 6, "balanced", seed=3, label_column="label").select(EXAMPLE)
    assert Counter(shot["label"] for shot in shots) == {"neg": 3, "pos": 3}
    # Labels alternate in sorted order, so the last shot before the example varies least.
    assert [shot["label"] for shot in shots] == ["neg", "pos"] * 3
    odd = ShotSelector(POOL, 5, "balanced", label_column="label").select(EXAMPLE)
    assert Counter(shot["label"] for shot in odd) == {"neg": 3, "pos": 2}


def test_balanced_needs_a_label_column() -> None:
    with pytest.raises(ValueError, match="label_column="):
        ShotSelector(POOL, 2, "balanced")
    with pytest.raises(ValueError, match=r"no column.*'gold'.*columns are: text, label"):
        ShotSelector(POOL, 2, "balanced", label_column="gold")


def test_similar_picks_the_obviously_nearest_rows() -> None:
    pool = [
        {"question": "What is the capital of France?", "answer": "Paris"},
        {"question": "How many legs does a spider have?", "answer": "8"},
        {"question": "What is the capital city of Italy?", "answer": "Rome"},
        {"question": "Who wrote Hamlet?", "answer": "Shakespeare"},
        {"question": "How many legs does an ant have?", "answer": "6"},
    ]
    selector = ShotSelector(pool, 2, "similar", label_column="answer")
    assert selector.text_columns == ["question"]
    capital = selector.select({"question": "What is the capital of Spain?", "answer": "Madrid"})
    assert [shot["answer"] for shot in capital] == ["Paris", "Rome"]
    legs = selector.select({"question": "How many legs does a beetle have?"})
    assert {shot["answer"] for shot in legs} == {"8", "6"}
    # Nothing in common: every score ties at zero, so pool order decides.
    assert selector.select({"question": "zebra"}) == pool[:2]


def test_similar_refuses_to_compare_answers() -> None:
    with pytest.raises(ValueError, match="label_column"):
        ShotSelector(POOL, 2, "similar")
    assert len(ShotSelector(POOL, 2, "similar", text_columns=["text"]).select(EXAMPLE)) == 2


@pytest.mark.parametrize("strategy", ["first", "random", "balanced", "similar"])
def test_the_example_is_never_its_own_shot(strategy: str) -> None:
    example = {"text": "review number 1", "label": "pos"}
    pool = [*POOL, dict(example)]  # a second copy at the end
    for seed in range(5):
        selector = ShotSelector(pool, 4, strategy, seed=seed, label_column="label")  # type: ignore[arg-type]
        shots = selector.select(example)
        assert len(shots) == 4 and example not in shots
    # With the whole pool as shots the only way to give k rows is to leave both copies out.
    everything = ShotSelector(pool, len(pool) - 2, strategy, label_column="label")  # type: ignore[arg-type]
    assert example not in everything.select(example)


def test_k_larger_than_the_pool() -> None:
    with pytest.raises(ValueError, match=r"k=31 .* only 30 rows"):
        ShotSelector(POOL, 31, "random")
    unlabelled = [*POOL[:3], {"text": "no label", "label": None}]
    with pytest.raises(ValueError, match=r"k=4 .* labelled shot pool has only 3 rows"):
        ShotSelector(unlabelled, 4, "balanced", label_column="label")
    exact = ShotSelector(POOL[:3], 3, "first")
    with pytest.raises(ValueError, match="only 2 pool rows differ from this example"):
        exact.select(POOL[0])
    with pytest.raises(ValueError, match="k=-1"):
        ShotSelector(POOL, -1)


def test_check_disjoint_raises_on_overlap() -> None:
    evaluation = [{"text": "fresh"}, {"text": "review number 7 "}]
    with pytest.raises(ValueError) as caught:
        check_disjoint(POOL, evaluation)
    message = str(caught.value)
    assert message.startswith("shot pool and evaluation set share 1 row (e.g. 'review number 7 ')")
    assert "split_dataset" in message
    check_disjoint(POOL, [{"text": "fresh"}])
    relabelled = [{"text": "review number 7", "label": "neg"}]
    check_disjoint(POOL, relabelled)  # compared on the shared columns: text and label
    with pytest.raises(ValueError, match="share 1 row"):
        check_disjoint(POOL, relabelled, key_columns=["text"])


def test_split_sample_then_select_similar_without_leaks() -> None:
    pool, evaluation = split_dataset(load_dataset(SAMPLE, policy=DESKTOP), 20, seed=1)
    check_disjoint(pool, evaluation)
    selector = ShotSelector(pool.rows, 4, "similar", label_column="label")
    assert len(pool) == 20 and len(evaluation) > 0
    for example in evaluation.rows:
        shots = selector.select(example)
        assert len(shots) == 4 and all(shot in pool.rows for shot in shots)


def test_sst2_pool_against_validation() -> None:
    needs.shared_data("sst2", "train.tsv")
    needs.shared_data("sst2", "validation.tsv")
    train = load_dataset(SHARED_DATA / "sst2" / "train.tsv", policy=DESKTOP)
    validation = load_dataset(SHARED_DATA / "sst2" / "validation.tsv", policy=DESKTOP)
    check_disjoint(train, validation)
    selector = ShotSelector(train.rows, 8, "similar", label_column="label")
    example = validation.rows[0]
    shots = selector.select(example)
    words = set(example["sentence"].split()) - {"'s", ",", ".", "a", "and", "the"}
    assert len(shots) == 8 and any(words & set(shot["sentence"].split()) for shot in shots)
    balanced = ShotSelector(train.rows, 8, "balanced", label_column="label").select(example)
    assert Counter(shot["label"] for shot in balanced) == {"0": 4, "1": 4}
    assert dataset_from_rows(shots, "shots").columns == ["sentence", "label"]
