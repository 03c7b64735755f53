"""What the tabs share, without a browser: following a comparison's events, stopping one
session's work, and the one rule for the models a user can pick."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.compare.engine import CellStarted, RowDone, RunFinished, RunStarted
from studio.settings import load_settings
from studio.store.records import ComparisonResult
from studio.ui.common.choices import model_choices
from studio.ui.common.live import LiveRun, follow, live_frame
from studio.ui.common.stops import StopRegistry


def _row(done: int) -> RowDone:
    result = ComparisonResult(
        config_id=1, example_index=done, prompt_text="p", gold="a", prediction="a", correct=True,
        latency_ms=1.0, prompt_tokens=1,
    )  # fmt: skip
    return RowDone(0, result, done, 3, 10.0)


def test_follow_passes_on_what_is_due_and_records_every_event() -> None:
    now = [0.0]
    live = LiveRun(n_cells=1, clock=lambda: now[0])
    stop = StopRegistry().begin("s")
    events = [RunStarted(run_id=4, total=3), CellStarted(0, "m"), _row(1), _row(2), _row(3)]
    shown = list(follow([*events, RunFinished(4, "completed")], live, stop))
    # Three rows at once are not due (less than UPDATE_EVERY_S apart): the browser is spared.
    assert [type(e).__name__ for e in shown] == ["RunStarted", "CellStarted", "RunFinished"]
    assert (live.run_id, live.done, live.status, live.stopping) == (4, 3, "completed", False)
    assert live_frame(live)["example"].tolist() == [3, 2, 1]
    assert live_frame(None).empty
    stop.set()
    list(follow([RunStarted(run_id=5, total=1)], live, stop))
    assert live.stopping


def test_a_stop_reaches_only_its_own_session_and_is_forgotten_after() -> None:
    stops = StopRegistry()
    with stops.running("a") as a, stops.running("b") as b:
        assert stops.stop("a") and a.is_set() and not b.is_set()
    assert not stops.stop("a") and not stops.stop("b")


def test_the_model_to_start_on_is_always_a_choice(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, offline=True)
    choices = model_choices(settings, "someone/not-here", adapters=False)
    assert choices[0] == "someone/not-here" and choices.count("someone/not-here") == 1
    assert settings.default_model in model_choices(settings)


@pytest.mark.parametrize("adapters", [True, False])
def test_adapters_are_choices_unless_training(tmp_path: Path, adapters: bool) -> None:
    folder = tmp_path / "adapters" / "mine"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text('{"base_model_name_or_path": "base"}')
    (folder / "adapter_model.safetensors").write_bytes(b"")
    settings = load_settings(home=tmp_path, offline=True, adapters_dir=tmp_path / "adapters")
    assert ("adapters/mine" in model_choices(settings, adapters=adapters)) is adapters
