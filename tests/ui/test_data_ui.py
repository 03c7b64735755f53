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
from studio.ui.data.views import CANDIDATE_COLUMNS, PAIR_COLUMNS
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


def _candidate(cid: str, accepted: bool, instruction: str, output: str | None, reason=None):
    from studio.data.synthetic_work import Candidate

    return Candidate(
        id=cid, round=0, instruction=instruction, status="accepted" if accepted else "rejected",
        reason=reason, rouge_l=0.31, most_similar="Name a colour.", most_similar_id="s1",
        instruction_prompt="1. ...", instruction_seed=7, instruction_context=["s1", "s2"],
        input="", output=output, instance_prompt="Task: ..." if output else None,
        instance_seed=8 if output else None,
    )  # fmt: skip


def _job(handlers, name: str) -> None:
    """A generation job's work folder as the engine leaves it after one round."""
    from studio.data.synthetic_work import GenerationSettings, append_round, start_work, work_folder
    from studio.settings import SAMPLES_DIR

    folder = work_folder(handlers.synthetic.datasets_dir, name)
    seeds = str(SAMPLES_DIR / "seed-tasks.jsonl")
    settings = GenerationSettings(seed_tasks=seeds, generator="smollm2-135m-instruct", count=2,
                                  output=name)  # fmt: skip
    start_work(folder, settings, "h" * 64)
    append_round(folder, 0, [
        _candidate("r0-0", True, "List three fruits.", "apple, pear, plum"),
        _candidate("r0-1", True, "Say hello in French.", "Bonjour"),
        _candidate("r0-2", False, "Draw a map of Paris.", None, reason="keyword:map"),
    ])  # fmt: skip


def test_generated_candidates_are_reviewed_and_saved_with_the_edits(handlers) -> None:
    _job(handlers, "synth")
    status, rows = handlers.candidates("synth")
    assert "**2 / 2** accepted of 3 candidates" in status
    assert [(r[0], r[1], r[3]) for r in rows] == [
        ("r0-0", True, ""), ("r0-1", True, ""), ("r0-2", False, "keyword:map"),
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=CANDIDATE_COLUMNS)
    table.loc[1, "keep"] = False  # the reviewer drops one
    table.loc[0, "output"] = "apple, pear and plum"  # and edits another
    saved, versions = handlers.save_generated("synth", table)
    assert "synth@v1" in saved and "1 instructions" in saved
    assert versions[0][:3] == ["synth@v1", "synthetic", 1]
    (row,) = load_dataset(versions[0][-1], policy=HostingPolicy.desktop()).rows
    assert (row["instruction"], row["output"], row["review"]) == (
        "List three fruits.", "apple, pear and plum", "edited",
    )  # fmt: skip
    version = handlers.services.store.get_dataset_version("synth")
    assert {e["candidate"] for e in version.lineage["review"]} >= {"r0-0", "r0-1"}
    with pytest.raises(gr.Error, match="No generation named 'synth'"):
        handlers.candidates("synth")  # saving ended the job


def test_a_public_demo_may_not_generate(handlers, tmp_path) -> None:
    handlers.services.policy = HostingPolicy(mode=Mode.DEMO)
    handlers.synthetic.backends.policy = handlers.services.policy
    request = gr.Request()
    with pytest.raises(gr.Error, match="demo"):
        list(handlers.generate("studio/samples/seed-tasks.jsonl", "smollm2-135m-instruct", 2,
                               32, "demo-synth", request))  # fmt: skip
    assert not (tmp_path / "datasets").exists()


def test_generation_progress_streams_and_ends_with_the_candidates(handlers, tmp_path) -> None:
    from studio.data.synthetic import Finished, Judged, Started
    from studio.data.synthetic_work import GenerationSettings

    _job(handlers, "live")
    settings = GenerationSettings(seed_tasks="s.jsonl", generator="m", count=2, output="live")
    folder = tmp_path / "w"
    c0, c1 = _candidate("r0-0", True, "A", "a"), _candidate("r0-2", False, "B", None)
    events = [
        Started(folder, settings, 0, 0, False),
        Judged(c0, 1, 2),
        Judged(c1, 1, 2),
        Finished("stopped", 1, 2, 2, folder),
    ]
    updates = list(handlers._follow(iter(events), "live"))
    assert [u[0] for u in updates[:3]] == [
        "**0 / 2** accepted of 0 candidates · loading the generator…",
        "**1 / 2** accepted of 1 candidates",
        "**1 / 2** accepted of 2 candidates",
    ]
    status, rows = updates[-1]
    assert "stopped: Generate again continues" in status
    assert [r[0] for r in rows] == ["r0-0", "r0-1", "r0-2"]  # the job's candidates, for review
