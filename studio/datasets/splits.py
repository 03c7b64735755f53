"""Splitting a data set into a shot pool and an evaluation set; rows two sets share (leaks)."""

from __future__ import annotations

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

from studio.datasets.errors import DatasetError
from studio.datasets.table import Dataset, _rows_hash, require_columns


def split_dataset(
    dataset: Dataset, pool_size: int | float, seed: int = 0
) -> tuple[Dataset, Dataset]:
    """Split into (shot pool, evaluation set) with a seeded shuffle; both keep file order.

    pool_size is a row count (int) or a fraction in (0, 1). Identical rows always land on the
    same side, so the two parts share no content even when the file repeats a row; with such
    repeats the pool can come out a few rows smaller than asked.
    """
    target = _pool_count(dataset, pool_size)
    groups = list(_identical_row_groups(dataset.rows).values())
    random.Random(seed).shuffle(groups)
    pool: list[int] = []
    evaluation: list[int] = []
    for group in groups:
        (pool if len(pool) + len(group) <= target else evaluation).extend(group)
    if not pool or not evaluation:
        raise DatasetError(
            dataset.source,
            "cannot be split: its repeated rows leave one side empty",
            "remove duplicate rows or use separate files",
        )
    return _subset(dataset, sorted(pool), "pool"), _subset(dataset, sorted(evaluation), "eval")


def _pool_count(dataset: Dataset, pool_size: int | float) -> int:
    n = len(dataset)
    fix = f"pass pool_size as a row count from 1 to {n - 1} or a fraction between 0 and 1"
    if n < 2:
        raise DatasetError(dataset.source, f"has {n} row(s); a split needs at least 2", fix)
    if isinstance(pool_size, bool) or not isinstance(pool_size, (int, float)):
        raise DatasetError(dataset.source, f"pool_size={pool_size!r} is not a number", fix)
    if isinstance(pool_size, int):
        if not 1 <= pool_size < n:
            raise DatasetError(
                dataset.source, f"pool_size={pool_size} does not fit its {n} rows", fix
            )
        return pool_size
    if not 0 < pool_size < 1:
        raise DatasetError(dataset.source, f"pool_size={pool_size} is not in (0, 1)", fix)
    return min(max(round(pool_size * n), 1), n - 1)


def _identical_row_groups(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[int]]:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    groups: dict[str, list[int]] = {}
    for index, row in enumerate(rows):
        groups.setdefault(content_key(row, columns), []).append(index)
    return groups


def _subset(dataset: Dataset, indices: list[int], part: str) -> Dataset:
    rows = [dict(dataset.rows[i]) for i in indices]
    return Dataset(
        name=f"{dataset.name}[{part}]",
        path=dataset.path,
        format=dataset.format,
        columns=list(dataset.columns),
        rows=rows,
        content_hash=_rows_hash(dataset.columns, rows),
        shown=dataset.shown,
    )


def content_key(row: Mapping[str, Any], columns: Sequence[str]) -> str:
    """A comparable key for a row's values in `columns` (absent = None).

    Runs of whitespace in strings count as one space and ends are trimmed: the same sentence
    saved by two tools often differs only there (SST-2 rows end with a space, for instance).
    """
    values = [row.get(column) for column in columns]
    values = [" ".join(v.split()) if isinstance(v, str) else v for v in values]
    return json.dumps(values, sort_keys=True, ensure_ascii=False, default=str)


def overlapping_rows(
    a: Sequence[Mapping[str, Any]],
    b: Sequence[Mapping[str, Any]],
    key_columns: Sequence[str] | None = None,
) -> list[Mapping[str, Any]]:
    """Rows of b whose values in key_columns (default: columns both have) also occur in a."""
    if key_columns is None:
        a_columns = dict.fromkeys(key for row in a for key in row)
        key_columns = [
            key for key in dict.fromkeys(k for row in b for k in row) if key in a_columns
        ]
    if not key_columns:
        return []
    seen = {content_key(row, key_columns) for row in a}
    return [row for row in b if content_key(row, key_columns) in seen]


def overlap(a: Dataset, b: Dataset, key_columns: Sequence[str] | None = None) -> int:
    """How many rows of b also appear in a (all shared columns, or key_columns): the leak check.

    Without key_columns the comparison uses the columns both data sets have, so an extra id
    column in one of them does not hide a leak.
    """
    if key_columns is not None:
        require_columns(a, key_columns, "overlap")
        require_columns(b, key_columns, "overlap")
    elif not set(a.columns) & set(b.columns):
        raise DatasetError(
            b.source,
            f"shares no column with {a.source}; columns are: {', '.join(b.columns)}",
            "pass key_columns naming the columns to compare",
        )
    return len(overlapping_rows(a.rows, b.rows, key_columns))
