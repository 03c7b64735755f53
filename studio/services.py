"""Wire settings, the store, the model manager and the engines together once per process."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from studio.compare.engine import ComparisonRunner, process_alive
from studio.hosting import HostingPolicy
from studio.models.manager import ModelManager
from studio.playground.engine import Playground
from studio.settings import Settings, SettingsError, get_settings
from studio.store import Store
from studio.templates import configure_rendering

log = logging.getLogger(__name__)
TUNING_WATCH_SECONDS = 3.0


@dataclass
class Services:
    """Everything the UI and the CLI call into. Built once; shared by all sessions."""

    settings: Settings
    policy: HostingPolicy
    store: Store
    models: ModelManager
    playground: Playground
    comparisons: ComparisonRunner
    _watcher: threading.Thread | None = None
    _closing: threading.Event = field(default_factory=threading.Event)

    def watch_tuning_queue(self) -> None:
        """Keep the tuning queue moving while the studio runs: start the next queued job when
        none trains, and mark workers that died as interrupted. Workers also start their
        successor as they exit; this covers workers that were killed."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="tuning-queue", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        from studio.tuning.jobs import start_next

        while not self._closing.wait(TUNING_WATCH_SECONDS):
            try:
                start_next(self.settings, self.store)
            except Exception:  # a transient database or lock problem must not end the watcher
                log.exception("advancing the tuning queue failed; retrying")

    def close(self) -> None:
        self._closing.set()
        self.models.cache.clear()
        self.store.close()


def prepare_home(settings: Settings) -> None:
    """Create STUDIO_HOME if needed; a folder the studio cannot write is a settings error that
    names the variable, not a traceback."""
    try:
        settings.home.mkdir(parents=True, exist_ok=True)
        probe = settings.home / ".write-test"
        probe.touch()
        probe.unlink()
    except OSError as exc:
        raise SettingsError(
            f"STUDIO_HOME: the studio cannot write to {settings.home} ({exc.strerror or exc}). "
            "Fix: point STUDIO_HOME at a folder you can write, or fix its permissions"
        ) from None


def create_services(settings: Settings | None = None, host: str | None = None) -> Services:
    """Open the store (applying migrations) and set up model loading; loads no model yet.
    `host` is the address the UI will listen on, if it serves (it decides the hosting mode)."""
    settings = settings or get_settings()
    policy = HostingPolicy.from_settings(settings, host)
    configure_rendering(policy.limits)  # the operator's STUDIO_MAX_RENDER_* for every template
    prepare_home(settings)
    store = Store(settings.database_url)
    # Runs left "running" by a process that has since died were interrupted, not finished.
    store.mark_dead_runs_interrupted(process_alive)
    from studio.tuning.jobs import worker_alive

    store.mark_dead_tuning_runs_interrupted(worker_alive)
    models = ModelManager(settings)
    return Services(
        settings,
        policy,
        store,
        models,
        Playground(store, models, policy),
        ComparisonRunner(store, models, policy),
    )
