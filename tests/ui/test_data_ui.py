"""The Data tab's handlers on a real store: generation runs offered with the rules each supports,
pairs built for review, the reviewer's keep/swap edits saved as a dataset version, a public demo
refused by the engine, and the written datasets listed."""

from __future__ import annotations

from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from studio.datasets import load_dataset
from studio.hosting import HostingPolicy, Mode
from studio.services import create_services
from studio.settings import load_settings
from studio.ui.data.handlers import DataHandlers
from studio.ui.data.views import PAIR_COLUMNS
from tests.ui.judged_runs import pairwise_run, sampled_run


@pytest.fixture
def handlers(tmp_path: Path):
    services = create_services(load_settings(home=tmp_path, offline=True))
    yield DataHandlers(services)
    services.close()


def test_runs_rules_build_review_and_save(handlers) -> None:
    store = handlers.services.store
    judged, sampled = pairwise_run(store), sampled_run(store)
    choices = [value for _, value in handlers.runs()["choices"]]
    assert choices == [f"c{sampled}", f"c{judged}"]  # newest first
    assert handlers.rules(f"c{judged}")["choices"] == ["exact", "judge"]
    assert handlers.rules(f"c{sampled}")["choices"] == ["exact"]
    rows, note = handlers.build(f"c{judged}", "judge", 0)
    assert [r[3] for r in rows] == [0, 1, 3] and "3 pairs" in note
    assert all(r[1] is True and r[2] is False for r in rows)  # kept, unswapped until edited
    edited = pd.DataFrame(rows, columns=PAIR_COLUMNS)
    edited.loc[0, "keep"] = False
    edited.loc[2, "swap"] = True
    saved, versions = handlers.save(f"c{judged}", "judge", 0, edited, "reviewed")
    assert "reviewed@v1" in saved and "2 pairs" in saved
    assert versions[0][:5] == ["reviewed@v1", "pairs", 2, f"c{judged}", "judge"]
    path = versions[0][-1]
    rows = load_dataset(path, policy=HostingPolicy.desktop()).rows
    assert [(r["example_index"], r["chosen"], r["rejected"]) for r in rows] == [
        (1, "b", "a"), (3, "b", "a"),
    ]  # fmt: skip


def test_bad_requests_are_errors_the_user_can_act_on(handlers) -> None:
    run = f"c{sampled_run(handlers.services.store)}"
    with pytest.raises(gr.Error, match="Pick a generation run"):
        handlers.build(None, None, 0)
    with pytest.raises(gr.Error, match="has no judge"):
        handlers.build(run, "judge", 0)
    rows, _ = handlers.build(run, "exact", 0)
    with pytest.raises(gr.Error, match="not a valid dataset name"):
        handlers.save(run, "exact", 0, rows, "")


def test_a_public_demo_may_build_but_not_save(handlers, tmp_path) -> None:
    run = f"c{sampled_run(handlers.services.store)}"
    handlers.services.policy = HostingPolicy(mode=Mode.DEMO)
    rows, _ = handlers.build(run, "exact", 0)  # reading the shared runs is allowed
    with pytest.raises(gr.Error, match="demo"):
        handlers.save(run, "exact", 0, rows, "demo-pairs")
    assert handlers.services.store.dataset_versions() == []
    assert not (tmp_path / "datasets").exists() or not any((tmp_path / "datasets").rglob("*.jsonl"))
