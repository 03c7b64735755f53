"""The log tail of the Tune tab and `studio jobs log`: a progress bar's redraws are one line."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from studio.store import TuningRun
from studio.tuning.jobs import LOG_NAME, log_tail


def run_in(work_dir: Path) -> TuningRun:
    return TuningRun(
        id=1, name="x", status="running", config={}, base_model="m", dataset_id=None,
        template_version_id=None, work_dir=str(work_dir), adapter_path="adapters/x", progress={},
        summary=None, stop_requested=False, resume=False, created_at=datetime.now(timezone.utc),
        started_at=None, finished_at=None, error=None, host=None, pid=None,
    )  # fmt: skip


def test_each_progress_bar_shows_only_its_last_frame(tmp_path: Path) -> None:
    frames = "\r".join(f"Loading weights: {p}%" for p in (0, 50, 100))
    (tmp_path / LOG_NAME).write_text(f"started\n{frames}\n[00:01] step 1/4 · loss 0.9\n")
    assert (
        log_tail(run_in(tmp_path)) == "started\nLoading weights: 100%\n[00:01] step 1/4 · loss 0.9"
    )


def test_the_tail_keeps_the_last_lines_and_a_line_still_being_written(tmp_path: Path) -> None:
    lines = [f"line {n}" for n in range(10)]
    (tmp_path / LOG_NAME).write_text("\n".join(lines) + "\npartial\rpartial 2")
    assert log_tail(run_in(tmp_path), lines=3) == "line 8\nline 9\npartial 2"


def test_no_log_yet_is_an_empty_tail(tmp_path: Path) -> None:
    assert log_tail(run_in(tmp_path)) == ""
    (tmp_path / LOG_NAME).write_text("")
    assert log_tail(run_in(tmp_path)) == ""
