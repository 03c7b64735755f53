"""Wire settings, the store, the model manager and the engines together once per process."""

from __future__ import annotations

from dataclasses import dataclass

from studio.compare.engine import ComparisonRunner, process_alive
from studio.models.manager import ModelManager
from studio.playground import Playground
from studio.settings import Settings, get_settings
from studio.store import Store


@dataclass
class Services:
    """Everything the UI and the CLI call into. Built once; shared by all sessions."""

    settings: Settings
    store: Store
    models: ModelManager
    playground: Playground
    comparisons: ComparisonRunner

    def close(self) -> None:
        self.models.cache.clear()
        self.store.close()


def create_services(settings: Settings | None = None) -> Services:
    """Open the store (applying migrations) and set up model loading; loads no model yet."""
    settings = settings or get_settings()
    settings.home.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url)
    # Runs left "running" by a process that has since died were interrupted, not finished.
    store.mark_dead_runs_interrupted(process_alive)
    models = ModelManager(settings)
    return Services(
        settings, store, models, Playground(store, models), ComparisonRunner(store, models)
    )
