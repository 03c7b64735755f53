"""Run references and the config diff: pure functions, no store."""

from __future__ import annotations

import pytest

from studio.experiments.diff import config_diff, flatten
from studio.experiments.refs import RunRef, parse_ref, parse_refs


@pytest.mark.parametrize(
    ("text", "ref"),
    [
        ("c7", RunRef("comparison", 7)),
        ("7", RunRef("comparison", 7)),  # bare numbers stay comparison runs
        ("#7", RunRef("comparison", 7)),
        ("T3", RunRef("tuning", 3)),
        (" a2 ", RunRef("adapter", 2)),
    ],
)
def test_references_name_their_kind(text: str, ref: RunRef) -> None:
    assert parse_ref(text) == ref
    assert parse_ref(str(ref)) == ref


@pytest.mark.parametrize("text", ["", "x7", "c", "c-1", "t3.5", "c 7 8"])
def test_bad_references_say_which_forms_work(text: str) -> None:
    with pytest.raises(ValueError, match="c<N> for a comparison run, t<N> for a tuning run"):
        parse_ref(text)


def test_several_references_keep_order_and_drop_duplicates() -> None:
    assert [str(r) for r in parse_refs(["c2,t1", "2", "a4"])] == ["c2", "t1", "a4"]


def test_config_diff_flattens_sections_and_keeps_only_differences_when_asked() -> None:
    first = {"name": "a", "training": {"lr": 0.001, "steps": 2}, "shots": [0, 3]}
    second = {"name": "b", "training": {"lr": 0.001, "steps": 4}, "extra": True}
    assert flatten(first) == {
        "name": '"a"', "training.lr": "0.001", "training.steps": "2", "shots": "[0, 3]",
    }  # fmt: skip
    rows = config_diff([first, second])
    assert [r.key for r in rows] == ["name", "training.lr", "training.steps", "shots", "extra"]
    assert rows[1].values == ["0.001", "0.001"] and not rows[1].differs
    different = config_diff([first, second], differences_only=True)
    assert [(r.key, r.values) for r in different] == [
        ("name", ['"a"', '"b"']),
        ("training.steps", ["2", "4"]),
        ("shots", ["[0, 3]", "—"]),
        ("extra", ["—", "true"]),
    ]
