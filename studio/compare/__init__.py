"""Comparison grids: models × templates × shot counts × seeds over an evaluation set."""

from studio.compare.config import CompareConfig
from studio.compare.engine import ComparisonRunner, Prepared, prepare_run
from studio.compare.summary import ConfigSummary, summarize_run

__all__ = [
    "CompareConfig",
    "ComparisonRunner",
    "ConfigSummary",
    "Prepared",
    "prepare_run",
    "summarize_run",
]
