"""Experiment store: the only place in Instruct Studio that speaks SQL.

Everything the studio logs (playground exchanges and the models used, prompt template versions,
datasets, zero/few-shot comparison runs and their results, and later tuning runs) goes through a
Store; callers work with frozen records, never ORM rows or SQL. Opening a store applies the
bundled Alembic migrations.
"""

from studio.store.engine import StoreError
from studio.store.records import (
    ComparisonConfig,
    ComparisonConfigSpec,
    ComparisonResult,
    ComparisonRun,
    DatasetRecord,
    ExchangeRecord,
    ExchangeSummary,
    ModelUse,
    TemplateVersion,
)
from studio.store.store import Store, open_store

__all__ = [
    "ComparisonConfig",
    "ComparisonConfigSpec",
    "ComparisonResult",
    "ComparisonRun",
    "DatasetRecord",
    "ExchangeRecord",
    "ExchangeSummary",
    "ModelUse",
    "Store",
    "StoreError",
    "TemplateVersion",
    "open_store",
]
