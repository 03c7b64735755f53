"""The tuning engine as the UI and the CLI see it: one queue bound to this studio's settings,
store and hosting policy. Check a config, queue it, start the next run, stop, resume; a watcher
thread keeps the queue moving while a server runs."""

from __future__ import annotations

import logging
import threading
from typing import Any

from studio.hosting import HostingPolicy
from studio.settings import Settings
from studio.store import Store, TuningRun
from studio.tuning import jobs
from studio.tuning.config import TuneConfig
from studio.tuning.jobs import LaunchCheck

log = logging.getLogger(__name__)
WATCH_SECONDS = 3.0


class TuningQueue:
    """Every tuning action a visitor or the operator can take, under one policy."""

    def __init__(self, settings: Settings, store: Store, policy: HostingPolicy) -> None:
        self.settings = settings
        self.store = store
        self.policy = policy
        self._watcher: threading.Thread | None = None
        self._closing = threading.Event()

    def check(
        self, config: TuneConfig, overwrite: bool = False, tokenizer: Any = None
    ) -> LaunchCheck:
        """Everything that can fail before a worker starts (see jobs.check_launch), and a name
        that a queued or training run already writes to."""
        check = jobs.check_launch(config, self.settings, self.policy, overwrite, tokenizer)
        jobs.refuse_busy_name(check, self.store)
        return check

    def queue(self, check: LaunchCheck) -> TuningRun:
        """Record a checked run in the queue; `start_next` starts it."""
        return jobs.queue_run(check, self.settings, self.store, self.policy)

    def start_next(self) -> TuningRun | None:
        """Start the oldest queued run if none is training; the run started, if any."""
        return jobs.start_next(self.settings, self.store)

    def launch(self, check: LaunchCheck) -> tuple[TuningRun, TuningRun | None]:
        """Queue a checked run and start the queue: (the run queued, the run started if any)."""
        run = self.queue(check)
        return run, self.start_next()

    def stop(self, run_id: int) -> str:
        """Stop a running job at its next step, or cancel a queued one."""
        return jobs.stop_run(self.store, self.policy, run_id)

    def resume(self, run_id: int) -> TuningRun:
        """Queue a stopped, failed or interrupted run again from its checkpoint."""
        return jobs.resume_run(self.settings, self.store, self.policy, run_id)

    def mark_dead_interrupted(self) -> None:
        """Runs whose worker has died were interrupted, not finished."""
        self.store.mark_dead_tuning_runs_interrupted(jobs.worker_alive)

    def watch(self) -> None:
        """Keep the queue moving while the studio runs: start the next queued job when none
        trains, and mark workers that died as interrupted. Workers also start their successor
        as they exit; this covers workers that were killed."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="tuning-queue", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        while not self._closing.wait(WATCH_SECONDS):
            try:
                self.start_next()
            except Exception:  # a transient database or lock problem must not end the watcher
                log.exception("advancing the tuning queue failed; retrying")

    def close(self) -> None:
        self._closing.set()
