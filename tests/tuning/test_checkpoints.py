"""Which checkpoint a resumed run starts from: the newest complete one, never a half-written one."""

from __future__ import annotations

import json
from pathlib import Path

from studio.tuning.trainer import latest_checkpoint


def checkpoint(root: Path, step: int, state: str | None) -> Path:
    folder = root / f"checkpoint-{step}"
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(b"weights")
    if state is not None:
        (folder / "trainer_state.json").write_text(state, encoding="utf-8")
    return folder


def test_the_newest_complete_checkpoint_wins_over_a_half_written_one(tmp_path: Path) -> None:
    complete = checkpoint(tmp_path, 4, json.dumps({"global_step": 4}))
    checkpoint(tmp_path, 10, json.dumps({"global_step": 10}))
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"  # 10 > 4, not "10" < "4"
    checkpoint(tmp_path, 12, None)  # killed before trainer_state.json was written
    checkpoint(tmp_path, 14, '{"global_st')  # killed while writing it
    assert latest_checkpoint(tmp_path) == tmp_path / "checkpoint-10"
    (tmp_path / "checkpoint-10" / "trainer_state.json").unlink()
    assert latest_checkpoint(tmp_path) == complete


def test_no_checkpoint_and_stray_folders(tmp_path: Path) -> None:
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "checkpoint-final").mkdir()
    (tmp_path / "checkpoint-3").write_text("a file, not a folder")
    assert latest_checkpoint(tmp_path) is None
