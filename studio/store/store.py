"""The experiment store: the one object the rest of Instruct Studio logs through.

Store composes one mixin per feature (exchanges, prompt templates, datasets, comparison runs and
their results, tuning runs and adapters, experiment annotations and bundle imports) over
StoreBase, which owns the engine and the sessions.
Callers pass and receive the frozen records of studio.store.records; each method runs in its own
session and transaction, so one Store can be shared by web-server threads. Database failures
surface as StoreError naming the fix; vocabulary mistakes as ValueError before anything is written.
"""

from __future__ import annotations

from types import TracebackType

from studio.store.comparisons import ComparisonsMixin
from studio.store.datasets import DatasetsMixin
from studio.store.exchanges import ExchangesMixin
from studio.store.experiments import ExperimentsMixin
from studio.store.experiments_import import ImportMixin
from studio.store.prompts import PromptsMixin
from studio.store.results import ResultsMixin
from studio.store.tuning import TuningMixin


class Store(
    ExchangesMixin,
    PromptsMixin,
    DatasetsMixin,
    ComparisonsMixin,
    ResultsMixin,
    TuningMixin,
    ExperimentsMixin,
    ImportMixin,
):
    """Open (creating and migrating as needed) the database at a SQLAlchemy URL."""

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def open_store(url: str) -> Store:
    """Open the store at `url`, creating and migrating the database as needed; see Store."""
    return Store(url)
