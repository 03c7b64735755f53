"""The Start here tab without a browser: its handlers on a real store, step 1 on the real model."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import gradio as gr
import pandas as pd
import pytest

from studio.quickstart import sample
from studio.services import Services, create_services
from studio.settings import load_settings
from studio.ui.start.handlers import StartHandlers
from studio.ui.start.tab import build_start_tab
from studio.ui.start.views import RESULT_HEADERS, RUN_HEADERS

CI = re.compile(r"^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$")


def _services(home: Path, model_home: Path, **overrides: object) -> Services:
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    os.symlink(model_home / "models", home / "models")
    settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters", **overrides)
    return create_services(settings)


@pytest.fixture
def services(
    tmp_path: Path, model_home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Services]:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)  # the sample is found from the project root, not the cwd
    services = _services(tmp_path, model_home)
    yield services
    services.close()


def _final(values: list[tuple[object, ...]]) -> tuple[object, ...]:
    """The last yielded value of each output (gr.skip() means 'unchanged')."""
    last: list[object] = [None] * len(values[0])
    for update in values:
        for i, value in enumerate(update):
            if not _is_skip(value):
                last[i] = value
    return tuple(last)


def _is_skip(value: object) -> bool:
    return isinstance(value, dict) and value.get("__type__") == "update" and len(value) == 1


def test_the_tab_builds_with_step_three_locked_until_the_adapter_exists(services) -> None:
    with gr.Blocks() as blocks:
        build_start_tab(services)
    ids = {c.elem_id: c for c in blocks.blocks.values() if getattr(c, "elem_id", None)}
    for number in (1, 2, 3, 4):
        assert f"start-run-{number}" in ids and f"start-step-{number}" in ids
    assert ids["start-run-3"].interactive is False
    header = ids["start-step-1"].value
    assert "studio compare --config studio/samples/start-compare.yaml" in header


def test_tune_state_and_timer_send_only_changes(services) -> None:
    steps = StartHandlers(services)
    state = steps.tune_state(None)
    assert state["stop"] is False and state["step3"] is False
    assert state["info"] == "No tuning run yet."
    first = steps.tick(None, {})
    assert not any(_is_skip(v) for v in first[:4])
    again = steps.tick(None, first[4])
    assert all(_is_skip(v) for v in again[:4])
    # An adapter folder appearing unlocks step 3 at the next tick.
    folder = sample.adapter_folder(services.settings)
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text("{}", encoding="utf-8")
    unlocked = steps.tick(None, again[4])
    assert unlocked[3].interactive is True and _is_skip(unlocked[2])
    assert str(folder) in steps.tune_state(None)["info"]


def test_launch_queues_the_sample_run_behind_a_busy_queue_and_stop_cancels_it(services) -> None:
    store = services.store
    # A run training on another machine holds the queue, so the sample run waits in it.
    busy = store.create_tuning_run(
        name="elsewhere", config={}, base_model="m", work_dir=str(services.settings.home),
        adapter_path=str(services.settings.home / "elsewhere"),
    )  # fmt: skip
    assert store.start_tuning_run(busy.id, host="another-host", pid=1)
    steps = StartHandlers(services)
    status, run_id = steps.launch_tune()
    assert run_id is not None and status.startswith(f"▶ Run #{run_id} queued"), status
    run = store.get_tuning_run(run_id)
    assert run is not None and run.status == "queued" and run.name == sample.adapter_name()
    assert run.config["data"]["path"] == str(sample.TRAIN_FILE)
    assert run.config["data"]["template"] == "support-tickets"
    again, second = steps.launch_tune()  # the same adapter cannot be queued twice
    assert second is None and "already queued" in again
    assert steps.stop_tune(run_id) == f"Run #{run_id} was cancelled before it started."
    assert store.get_tuning_run(run_id).status == "cancelled"
    assert steps.stop_tune(run_id) == "Nothing is training for this step."
    frame = steps.stored_runs()
    assert list(frame.columns) == RUN_HEADERS
    assert frame.values.tolist() == [
        ["tuning", run_id, "start-tickets", "cancelled", "cancelled while queued"]
    ]
    assert "cancelled" in steps.tune_state(None)["info"]


def test_demo_mode_refuses_training_and_queues_nothing(
    tmp_path: Path, model_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    services = _services(tmp_path, model_home, demo=True, demo_max_examples=20)
    try:
        steps = StartHandlers(services)
        status, run_id = steps.launch_tune()
        assert run_id is None and "demo-no-training" in status
        assert services.store.list_tuning_runs() == []
        assert steps.config(1).limit == 10  # the demo cap over the 2 configurations
    finally:
        services.close()


def test_step_three_without_the_adapter_says_so_and_stores_nothing(services) -> None:
    steps = StartHandlers(services, limit=2)
    final = _final(list(steps.compare(3, "session")))
    assert "no adapter 'start-tickets'" in str(final[3]), final[3]
    assert final[4].interactive is True
    assert services.store.list_comparison_runs() == []
    assert steps.stop_compare(3, "session") == "Nothing is running for this step."


@pytest.mark.model
def test_step_one_runs_on_the_real_model_and_is_found_again(services) -> None:
    steps = StartHandlers(services, limit=4)
    updates = list(steps.compare(1, "session"))
    assert updates[0][3] == "Preparing…" and updates[0][4].interactive is False
    progress, live, results, status, button = _final(updates)
    assert isinstance(results, pd.DataFrame) and list(results.columns) == RESULT_HEADERS
    assert results["shots"].tolist() == [0, 4] and results["n"].tolist() == [4, 4]
    assert all(CI.match(text) for text in results["accuracy [95% CI]"])
    assert len(live) == 8 and set(live["gold"]) <= {"billing", "shipping", "technical", "account"}
    run = services.store.list_comparison_runs()[0]
    assert run.status == "completed" and run.name == "start here · 0 vs 4 shots"
    assert status.startswith("✓ Completed") and f"Run #{run.id} is stored" in status
    assert "smollm2-135m-instruct: 0-shot" in status and "run #" in progress
    assert button.interactive is True
    stored = steps.stored_runs()
    assert stored.values.tolist()[0][:4] == ["comparison", run.id, run.name, "completed"]


@pytest.mark.model
def test_stopping_step_one_keeps_the_rows_scored(services) -> None:
    steps = StartHandlers(services, limit=3)
    updates = []
    for update in steps.compare(1, "session"):
        updates.append(update)
        if "cell 2/2" in str(update[0]) and "run #" not in str(update[0]):
            assert steps.stop_compare(1, "session").startswith("Stopping")
    *_, results, status, _button = _final(updates)
    assert str(status).startswith("■ Stopped")
    run = services.store.list_comparison_runs()[0]
    assert run.status == "stopped"
    assert results["n"].tolist()[0] == 3 and results["n"].tolist()[1] < 3
