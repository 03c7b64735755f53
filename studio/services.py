"""Wire settings, the store, the model manager and the engines together once per process."""

from __future__ import annotations

from dataclasses import dataclass

from studio.compare.engine import ComparisonRunner, process_alive
from studio.experiments.actions import RunActions
from studio.hosting import HostingPolicy
from studio.inference.registry import ModelBackends
from studio.models.manager import ModelManager
from studio.playground.engine import Playground
from studio.settings import Settings, SettingsError, get_settings
from studio.store import Store
from studio.templates import configure_rendering
from studio.templates.library import TemplateLibrary
from studio.tuning.queue import TuningQueue


@dataclass
class Services:
    """Every engine the UI and the CLI call into, each bound to the same settings, store and
    hosting policy. Built once per process; shared by all sessions."""

    settings: Settings
    policy: HostingPolicy
    store: Store
    models: ModelManager
    comparisons: ComparisonRunner
    tuning: TuningQueue
    templates: TemplateLibrary
    playground: Playground
    experiments: RunActions

    def close(self) -> None:
        self.tuning.close()
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
    tuning = TuningQueue(settings, store, policy)
    tuning.mark_dead_interrupted()
    models = ModelManager(settings)
    backends = ModelBackends(models, policy)
    comparisons = ComparisonRunner(store, backends)
    return Services(
        settings=settings,
        policy=policy,
        store=store,
        models=models,
        comparisons=comparisons,
        tuning=tuning,
        templates=TemplateLibrary(policy.library, store, policy),
        playground=Playground(store, backends),
        experiments=RunActions(comparisons, tuning),
    )
