"""Follow a running comparison: progress, the latest rows, and when the browser should be updated.

The Compare tab, Experiments' re-run and Start here all consume the engine's events (RunStarted,
CellStarted, RowDone, then JudgeStarted and RowJudged for a judged run, RunFinished) through
`follow`; a run is done only at RunFinished (a judge grades the answers after the last row). The
engine reports every scored example and every judged answer; sending each one to the browser
would flood it on fast models, so LiveRun says when an update is due (every UPDATE_EVERY_S
seconds, at every start or end of a cell, and when judging starts or ends). No gradio here, so the
pacing and the texts are testable without a browser.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from studio.compare.engine import (
    CellStarted,
    Event,
    JudgeStarted,
    RowDone,
    RowJudged,
    RunFinished,
    RunStarted,
)
from studio.ui.common.formatting import progress_bar

UPDATE_EVERY_S = 0.5
LIVE_ROWS = 50
LIVE_HEADERS = ["config", "example", "gold", "prediction", "correct", "latency ms"]
STOPPING = "Stopping at the next batch; the rows scored so far are kept."


@dataclass
class LiveRun:
    """The state of one run as seen by the UI, fed the engine's events in order."""

    n_cells: int
    tags: list[str] = field(default_factory=list)  # C1 · ... per position, once the run exists
    clock: Callable[[], float] = time.monotonic
    run_id: int | None = None
    total: int = 0
    done: int = 0
    rate: float = 0.0
    cell: int = -1
    cell_label: str = ""
    status: str | None = None
    error: str | None = None
    stopping: bool = False
    judge_total: int | None = None  # answers the judge grades, once judging has started
    judged: int = 0
    rows: deque[list[Any]] = field(default_factory=lambda: deque(maxlen=LIVE_ROWS))
    _last_update: float = float("-inf")

    def apply(self, event: Event) -> bool:
        """Record an event; True when the browser should be updated now."""
        if isinstance(event, RunStarted):
            self.run_id, self.total = event.run_id, event.total
        elif isinstance(event, CellStarted):
            self.cell, self.cell_label = event.position, event.label
        elif isinstance(event, RowDone):
            self.done, self.rate = event.done, event.examples_per_s
            self.rows.appendleft(self._row(event))
            return self._due()
        elif isinstance(event, JudgeStarted):
            self.judge_total, self.judged = event.total, 0
        elif isinstance(event, RowJudged):
            self.judge_total, self.judged = event.total, event.done
            return event.done == event.total or self._due()
        elif isinstance(event, RunFinished):
            self.status, self.error = event.status, event.error
        self._last_update = self.clock()
        return True

    def _due(self) -> bool:
        now = self.clock()
        if now - self._last_update < UPDATE_EVERY_S:
            return False
        self._last_update = now
        return True

    def _row(self, event: RowDone) -> list[Any]:
        """One scored example as a row of LIVE_HEADERS."""
        r = event.result
        tag = self.tags[event.position] if event.position < len(self.tags) else event.position
        prediction = r.prediction if r.prediction is not None else (r.output or "")
        return [
            tag,
            r.example_index,
            r.gold,
            prediction,
            "✓" if r.correct else "✗",
            round(r.latency_ms),
        ]

    def live_rows(self) -> list[list[Any]]:
        """The latest LIVE_ROWS rows, newest first."""
        return list(self.rows)

    @property
    def judging(self) -> bool:
        """Whether a judge has started grading the answers (the rows are all in)."""
        return self.judge_total is not None

    def progress_html(self) -> str:
        """A bar and one line: 123 / 400 rows · 12.3 ex/s · cell 2/4: label · ~25 s left; while
        a judge grades the answers: 400 / 400 rows · judging 12 / 300 answers."""
        share = self.done / self.total if self.total else 0.0
        parts = [f"{self.done} / {self.total} rows"]
        if self.judge_total is not None:
            share = self.judged / self.judge_total if self.judge_total else 1.0
            parts.append(f"judging {self.judged} / {self.judge_total} answers")
        elif self.rate > 0:
            parts.append(f"{self.rate:.1f} ex/s")
        if self.cell >= 0 and not self.judging:
            parts.append(f"cell {self.cell + 1}/{self.n_cells}: {self.cell_label}")
        if self.status is not None:
            parts.append(f"run #{self.run_id} {self.status}")
        elif self.stopping:
            parts.append("stopping at the next batch…")
        elif self.rate > 0 and self.total > self.done and not self.judging:
            parts.append(f"~{(self.total - self.done) / self.rate:.0f} s left")
        state = self.status or ("stopping" if self.stopping else "running")
        return progress_bar(share, " · ".join(parts), state)


def follow(
    events: Iterable[Event], live: LiveRun, stop: threading.Event | None = None
) -> Iterator[Event]:
    """The events the browser should be shown now; `live` records every event on the way, and
    whether `stop` has been asked for."""
    for event in events:
        live.stopping = stop is not None and stop.is_set()
        if live.apply(event):
            yield event


def live_frame(live: LiveRun | None) -> pd.DataFrame:
    """The latest rows as the live table shows them (empty before the run starts)."""
    return pd.DataFrame(live.live_rows() if live else [], columns=LIVE_HEADERS)
