"""What Start here shows, without gradio: the accuracy table of a comparison step, how a step
ended, the tuning step's outcome and what the loop stored."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio.compare.engine import RunFinished
from studio.compare.summary import ConfigSummary
from studio.quickstart import sample
from studio.store.records import ComparisonRun, TuningRun
from studio.ui.common.formatting import duration, estimate_text, number, progress_bar
from studio.ui.common.tuning_runs import can_stop

RESULT_HEADERS = ["model", "shots", "seed", "n", "accuracy [95% CI]", "acc_norm [95% CI]"]
RUN_HEADERS = ["kind", "run", "name", "status", "result"]
IDLE = progress_bar(0, "Not run yet.", "idle")
PREPARING = progress_bar(0, "Preparing: reading the sample and loading the model…", "running")
FOUND_COMPARE = (
    "Run #{run} is stored: open it in the **Compare** tab (past runs) or the **Experiments** "
    "tab for every example's exact prompt and choice scores; `studio runs list` lists it."
)
DEMO_NOTE = "Demo mode (STUDIO_DEMO=1): training is switched off here, so step 2 cannot run."
NOTHING_TO_STOP = "Nothing is running for this step."
VERDICTS = {"completed": "✓ Completed", "stopped": "■ Stopped (the rows scored are kept)"}


def result_rows(summaries: Sequence[ConfigSummary]) -> list[list[Any]]:
    """One row of RESULT_HEADERS per configuration, in grid order."""
    return [
        [s.model, s.shots, s.seed, s.n, estimate_text(s.accuracy), estimate_text(s.acc_norm)]
        for s in sorted(summaries, key=lambda s: s.position)
    ]


def finished_status(event: RunFinished, summaries: Sequence[ConfigSummary]) -> str:
    """How a comparison step ended, its mean accuracy, and where the run is found again."""
    return (
        f"{VERDICTS.get(event.status, '✗ Failed: ' + str(event.error))} — "
        f"mean accuracy {sample.headline_text(summaries)}.\n\n"
        + FOUND_COMPARE.format(run=event.run_id)
    )


def tune_result(run: TuningRun) -> str:
    """A tuning run's losses, wall time and adapter (or its error), on one line."""
    summary = run.summary or {}
    parts = [
        f"{label} {number(summary[key])}"
        for key, label in (("train_loss", "train loss"), ("eval_loss", "eval loss"))
        if summary.get(key) is not None
    ]
    if summary.get("wall_seconds") is not None:
        parts.append(duration(summary["wall_seconds"]))
    if run.status in ("completed", "stopped"):
        parts.append(f"adapter {run.adapter_path}")
    return " · ".join(parts) or (run.error or "")


def tune_markdown(run: TuningRun | None, folder: Path, ready: bool) -> str:
    """Step 2's outcome: where the adapter is and where the run is shown."""
    if run is None:
        return "No tuning run yet." + (f" An adapter is already at `{folder}`." if ready else "")
    lines = [f"Run #{run.id} **{run.status}**" + (f": {run.error}" if run.error else "")]
    result = tune_result(run)
    if result:
        lines.append(result)
    if ready and not can_stop(run):
        lines.append(
            f"The adapter is in `{folder}`: use `adapters/{folder.name}` as a model in Compare "
            "or Playground. Its loss curve and log are in the **Tune** tab (and Experiments)."
        )
    return "\n\n".join(lines)


def comparison_row(run: ComparisonRun, summaries: Sequence[ConfigSummary]) -> list[Any]:
    """A stored comparison of the loop as a row of RUN_HEADERS."""
    return ["comparison", run.id, run.name, run.status, sample.headline_text(summaries)]


def tuning_row(run: TuningRun) -> list[Any]:
    """A stored tuning run of the loop as a row of RUN_HEADERS."""
    return ["tuning", run.id, run.name, run.status, tune_result(run)]
