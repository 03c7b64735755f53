"""Tabular data sets: reading CSV/TSV/JSON/JSONL/Parquet files, splitting them, checking for leaks.

This package owns turning a user's file into rows the rest of the studio can trust. A file either
loads completely or fails with a DatasetError that names the file, the line and the problem, and
says how to fix it; nothing is ever partially returned. It also owns splitting one file into a
shot pool and an evaluation set, and counting rows two data sets share (the leak check).

Every read goes through the deployment's HostingPolicy: which paths a visitor may name, how a
path appears in messages, and how large a file may be, on disk and decoded. The decoded size is
bounded while the file is parsed, before the rows exist: a small file must not become gigabytes
of rows (a Parquet column of one long string repeated, a CSV line of empty fields, JSON nested
thousands of levels deep).

Callers import from here; the modules split the work by concern: load (formats, load_dataset),
reading (bytes and UTF-8), bounds (the decoded-size budget), one parser module per family of
formats (delimited, json_formats, parquet), table (the Dataset record), splits (pool/eval split,
overlap), self_instruct, and errors.
"""

from studio.datasets.errors import DatasetError
from studio.datasets.json_formats import MAX_JSON_DEPTH
from studio.datasets.load import SUPPORTED_FORMATS, load_dataset
from studio.datasets.self_instruct import flatten_self_instruct, is_self_instruct
from studio.datasets.splits import content_key, overlap, overlapping_rows, split_dataset
from studio.datasets.table import Dataset, dataset_from_rows, map_columns, require_columns

__all__ = [
    "MAX_JSON_DEPTH",
    "SUPPORTED_FORMATS",
    "Dataset",
    "DatasetError",
    "content_key",
    "dataset_from_rows",
    "flatten_self_instruct",
    "is_self_instruct",
    "load_dataset",
    "map_columns",
    "overlap",
    "overlapping_rows",
    "require_columns",
    "split_dataset",
]
