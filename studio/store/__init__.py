"""Experiment store: the only place in Instruct Studio that speaks SQL.

Everything the studio logs (playground exchanges, the models used, and later prompt versions,
comparisons and tuning runs) goes through a Store; callers work with frozen records, never ORM
rows or SQL. Opening a store applies the bundled Alembic migrations.
"""

from studio.store.engine import StoreError
from studio.store.records import ExchangeRecord, ExchangeSummary, ModelUse
from studio.store.store import Store, open_store

__all__ = [
    "ExchangeRecord",
    "ExchangeSummary",
    "ModelUse",
    "Store",
    "StoreError",
    "open_store",
]
