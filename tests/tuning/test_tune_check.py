"""`studio tune --check` states what evaluation costs next to the step count: the capped
default, and every eval row when --eval-rows asks for them, with the share each costs."""

from __future__ import annotations

import re
from pathlib import Path

from studio.tuning.trainer import EVAL_SHARE
from tests import needs
from tests.tuning.test_cli_tune import TRAIN, studio


def evaluation_line(home: Path, *extra: str) -> str:
    needs.shared_data("sst2", "train.tsv")
    result = studio(
        "tune", "--check",
        "--data", str(TRAIN), "--template", "sst2-sentiment", "--output", "adapters/check",
        "--limit", "1000", "--eval-split", "0.2", "--batch-size", "4", *extra,
        home=home,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "200 optimizer steps" in result.stdout  # 800 train rows, batch 4
    [line] = [line for line in result.stdout.splitlines() if line.startswith("Evaluation: ")]
    return line


def share(line: str) -> float:
    match = re.search(r"≈ ([\d.]+)% of the run's compute", line)
    assert match, line
    return float(match.group(1)) / 100


def test_check_states_the_capped_evaluation_and_more_when_asked(fresh_home: Path) -> None:
    capped = evaluation_line(fresh_home)
    # Every 20 steps of 200, then the final one: 11 evaluations of a subset of the eval rows.
    rows = re.search(r"11 evaluations × (\d+) of 200 eval rows", capped)
    assert rows and 16 <= int(rows.group(1)) < 200, capped
    assert share(capped) <= EVAL_SHARE and "set eval_rows to read more" in capped
    everything = evaluation_line(fresh_home, "--eval-rows", "200", "--batch-order", "random")
    assert "11 evaluations × 200 of 200 eval rows" in everything
    assert "eval_rows 200 as set" in everything and share(everything) > 2 * share(capped)
    assert not (fresh_home / "adapters" / "check").exists()  # --check queues nothing
