"""Experiment store: the only place in Instruct Studio that speaks SQL.

Everything the studio logs (playground exchanges and the models used, prompt template versions,
datasets, zero/few-shot comparison runs and their results, tuning runs, their metric points
and the adapters they produce) goes through a
Store; callers work with frozen records, never ORM rows or SQL. Opening a store applies the
bundled Alembic migrations.
"""

from studio.store.engine import StoreError
from studio.store.experiments import ConfigTally, DeleteReport, RunAnnotations
from studio.store.experiments_import import ExperimentBundle, ImportReport
from studio.store.records import (
    AdapterRecord,
    ComparisonConfig,
    ComparisonConfigSpec,
    ComparisonResult,
    ComparisonRun,
    DatasetRecord,
    DatasetVersion,
    ExchangeRecord,
    ExchangeSummary,
    MetricPoint,
    ModelUse,
    TemplateVersion,
    TuningRun,
)
from studio.store.store import Store, open_store

__all__ = [
    "AdapterRecord",
    "ComparisonConfig",
    "ComparisonConfigSpec",
    "ComparisonResult",
    "ComparisonRun",
    "ConfigTally",
    "DatasetRecord",
    "DatasetVersion",
    "DeleteReport",
    "ExchangeRecord",
    "ExchangeSummary",
    "ExperimentBundle",
    "ImportReport",
    "MetricPoint",
    "ModelUse",
    "RunAnnotations",
    "Store",
    "StoreError",
    "TemplateVersion",
    "TuningRun",
    "open_store",
]
