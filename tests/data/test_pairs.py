"""Preference pairs from the studio's own runs: by a pairwise judge's order-checked verdicts, by
the metric over repeated samples, reviewed (dropped, swapped) and saved as numbered dataset
versions with their rule as lineage; runs that cannot give pairs, bad names and a public demo are
refused with nothing left on disk or in the store. Runs are written into a real SQLite store as
the engine stores them (tests/ui/judged_runs.py), so no model runs here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from studio.cli.main import main
from studio.data.pairs import Review, build_pairs, pairs_dataset
from studio.datasets import load_dataset
from studio.hosting import HostingPolicy, Mode, PolicyRefusal
from studio.store import Store
from tests.snapshots import store_snapshot
from tests.ui.judged_runs import pairwise_run, pointwise_run, sampled_run

DESKTOP = HostingPolicy.desktop()


@pytest.fixture
def store(tmp_path: Path):
    store = Store(f"sqlite:///{tmp_path / 'studio.db'}")
    yield store
    store.close()


def test_a_pairwise_judge_gives_pairs_only_for_order_consistent_verdicts(store) -> None:
    run_id = pairwise_run(store)
    pairs = build_pairs(store, run_id, "judge")
    # C2 wins examples 0 and 1 in both orders, flips on 2 (no pair), loses 3 in both orders.
    assert [(p.example_index, p.chosen_from, p.rejected_from) for p in pairs] == [
        (0, "C2", "C1"), (1, "C2", "C1"), (3, "C1", "C2"),
    ]  # fmt: skip
    assert [(p.chosen, p.rejected) for p in pairs] == [("b", "a"), ("b", "a"), ("a", "b")]
    assert all(p.prompt == f"Instruction {p.example_index}\nResponse:" for p in pairs)


def test_repeated_samples_give_best_against_worst_by_the_metric(store) -> None:
    run_id = sampled_run(store)
    # Example 0: every sample right (no preference); 1: right and wrong samples; 2: all wrong.
    (pair,) = build_pairs(store, run_id, "exact")
    assert (pair.example_index, pair.chosen, pair.rejected) == (1, "a", "b")
    assert (pair.chosen_from, pair.rejected_from) == ("C1 sample 1", "C1 sample 2")
    assert (pair.chosen_score, pair.rejected_score) == (1.0, 0.0)
    assert build_pairs(store, run_id, "metric") == [pair]
    assert build_pairs(store, run_id, "exact", margin=1.0) == []


@pytest.mark.parametrize(
    ("make", "by", "message"),
    [
        (sampled_run, "rouge_l", "scored by exact.*--by exact"),
        (sampled_run, "judge", "has no judge.*--by exact"),
    ],
)
def test_a_run_that_cannot_give_pairs_says_what_can(store, make, by, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_pairs(store, make(store), by)
    with pytest.raises(ValueError, match=r"does not exist.*studio runs list"):
        build_pairs(store, 999, "exact")


def test_reviewed_pairs_are_saved_as_numbered_versions_with_lineage(store, tmp_path) -> None:
    run_id = pairwise_run(store)
    directory = tmp_path / "datasets"
    review = Review(drop=frozenset({1}), swap=frozenset({2}))
    first = pairs_dataset(store, DESKTOP, directory, run_id, "judge", "judged-pairs", 0.0, review)
    assert (first.name, first.version, first.kind, first.dataset.n_rows) == (
        "judged-pairs", 1, "pairs", 2,
    )  # fmt: skip
    assert first.lineage == {
        "source": f"c{run_id}", "rule": "judge", "margin": 0.0, "pairs_built": 3,
        "dropped": [1], "swapped": [2],
    }  # fmt: skip
    rows = load_dataset(first.dataset.path, policy=DESKTOP).rows
    assert [(r["example_index"], r["chosen"], r["rejected"]) for r in rows] == [
        (0, "b", "a"), (3, "b", "a"),  # example 3 swapped by the reviewer
    ]  # fmt: skip
    assert Path(first.dataset.path).parent == directory / "judged-pairs"
    second = pairs_dataset(store, DESKTOP, directory, run_id, "judge", "judged-pairs")
    assert second.version == 2 and second.dataset.n_rows == 3
    assert [v.ref for v in store.dataset_versions("judged-pairs")] == [
        "judged-pairs@v2", "judged-pairs@v1",
    ]  # fmt: skip
    assert store.get_dataset_version("judged-pairs").version == 2
    assert sorted(p.name for p in (directory / "judged-pairs").iterdir()) == sorted(
        {Path(first.dataset.path).name, Path(second.dataset.path).name}
    )  # no temporary file left


@pytest.mark.parametrize(
    ("name", "review", "policy", "error"),
    [
        ("Bad Name!", None, DESKTOP, "not a valid dataset name"),
        ("pairs", Review(drop=frozenset({7})), DESKTOP, r"review names pairs \[7\]"),
        ("pairs", None, HostingPolicy(mode=Mode.DEMO), "demo"),
    ],
)
def test_refusals_leave_nothing_behind(store, tmp_path, name, review, policy, error) -> None:
    run_id = pairwise_run(store)
    before = store_snapshot(tmp_path)
    with pytest.raises((ValueError, PolicyRefusal), match=error):
        pairs_dataset(store, policy, tmp_path / "datasets", run_id, "judge", name, 0.0, review)
    assert store_snapshot(tmp_path) == before
    assert not any((tmp_path / "datasets").rglob("*.jsonl"))


def test_a_rule_that_keeps_nothing_saves_nothing(store, tmp_path) -> None:
    run_id = pointwise_run(store)  # one configuration: nothing to prefer one answer over
    before = store_snapshot(tmp_path)
    with pytest.raises(ValueError, match=r"no rows to save.*Fix"):
        pairs_dataset(store, DESKTOP, tmp_path / "datasets", run_id, "judge", "none")
    assert store_snapshot(tmp_path) == before
    assert not any((tmp_path / "datasets").rglob("*.jsonl"))


def test_studio_data_builds_lists_shows_and_exports(tmp_path, monkeypatch, capsys) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("STUDIO_HOME", str(home))
    with Store(f"sqlite:///{home / 'studio.db'}") as store:
        run_id = sampled_run(store)
    assert main(["data", "pairs", "--run", f"c{run_id}", "--by", "exact", "--output", "s"]) == 0
    assert "s@v1: 1 pairs" in capsys.readouterr().out
    assert main(["data", "list", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert (listed["name"], listed["version"], listed["rows"]) == ("s", 1, 1)
    assert listed["lineage"]["source"] == f"c{run_id}"
    assert main(["data", "show", "s@v1"]) == 0
    assert '"chosen": "a"' in capsys.readouterr().out
    out = tmp_path / "s.jsonl"
    assert main(["data", "export", "s", "--output", str(out)]) == 0
    assert json.loads(out.read_text())["rejected"] == "b"
