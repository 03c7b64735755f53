"""The live preference curves of a run: StoreCallback plus TRL's reward metrics.

Imported by the worker only (transformers loads with it, after the OpenMP set-up).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from studio.tuning.callback import StoreCallback, _number

# What the live chart follows besides the loss (TRL's names; eval_ points are the held-out ones).
CURVES = (
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins",
    "rewards/accuracies",
    "log_odds_ratio",
    "kl",
)
CURVES_FILE = "preference_metrics.jsonl"


class PreferenceCallback(StoreCallback):
    """StoreCallback plus the preference curves: rewards of chosen and rejected, their margin
    and accuracy (ORPO: the log-odds ratio; KTO: the KL estimate), train and held-out. The store's
    metric points hold the loss curves; these go to the run's progress (latest values) and, one
    JSON line per logged step, to preference_metrics.jsonl in the run's folder."""

    def __init__(self, store: Any, run_id: int, total: int, say: Any, work_dir: Path) -> None:
        super().__init__(store, run_id, total, say)
        self.curves_path = Path(work_dir) / CURVES_FILE
        self.latest: dict[str, float] = {}

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        super().on_train_begin(args, state, control, **kwargs)
        if state.is_world_process_zero and self.curves_path.is_file():
            kept = [p for p in read_curves(self.curves_path) if p["step"] <= state.global_step]
            text = "".join(json.dumps(point) + "\n" for point in kept)
            self.curves_path.write_text(text, encoding="utf-8")

    def on_log(
        self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any
    ) -> None:
        super().on_log(args, state, control, logs=logs, **kw)
        if not state.is_world_process_zero or not logs:
            return
        point = {
            key: number
            for key, value in logs.items()
            if key.removeprefix("eval_") in CURVES and (number := _number(value)) is not None
        }
        if not point:
            return
        self.latest.update(point)
        with open(self.curves_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"step": state.global_step, "time": time.time(), **point}))
            handle.write("\n")
        run = self.store.get_tuning_run(self.run_id)
        progress = dict(run.progress or {}) if run is not None else {}
        self.store.set_tuning_progress(self.run_id, {**progress, "preference": self.latest})


def read_curves(path: Path) -> list[dict[str, Any]]:
    """The preference points a run logged (preference_metrics.jsonl), in order."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError:
        return []
    points = []
    for line in lines:
        try:
            points.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by a killed worker
    return points
