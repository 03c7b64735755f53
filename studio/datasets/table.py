"""The Dataset record, and building one from rows: every column on every row, content hash."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from studio.datasets.bounds import _Budget
from studio.datasets.errors import DatasetError


@dataclass(frozen=True)
class Dataset:
    """A fully loaded table: every row is a dict with exactly the keys in `columns`."""

    name: str
    path: str | None
    format: str
    columns: list[str]
    rows: list[dict[str, Any]]
    content_hash: str
    # How messages name the file: the path on a desktop, the file name on a hosted studio.
    shown: str | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.rows)

    def preview(self, n: int = 5) -> list[dict[str, Any]]:
        """Copies of the first n rows (copies, so a caller cannot change the data set)."""
        return [dict(row) for row in self.rows[: max(n, 0)]]

    def column(self, name: str) -> list[Any]:
        require_columns(self, [name], "Dataset.column")
        return [row[name] for row in self.rows]

    @property
    def source(self) -> str:
        """How errors name this data set: its path (as the policy shows it) for a file."""
        return self.shown or self.path or self.name


def require_columns(dataset: Dataset, needed: Iterable[str], purpose: str) -> None:
    """Raise DatasetError unless every needed column exists, listing the ones that do."""
    missing = [column for column in needed if column not in dataset.columns]
    if not missing:
        return
    names = ", ".join(repr(column) for column in missing)
    raise DatasetError(
        dataset.source,
        f"missing column(s) {names} needed by {purpose}; "
        f"columns are: {', '.join(dataset.columns) or '(none)'}",
        "rename the column in the file or choose one of the existing columns",
    )


def dataset_from_rows(
    rows: Sequence[Mapping[str, Any]], name: str, format: str = "rows"
) -> Dataset:
    """A Dataset from in-memory rows; its hash is that of the rows' canonical JSON."""
    for position, row in enumerate(rows, start=1):
        if not isinstance(row, Mapping):
            raise DatasetError(
                name, f"row {position} is {type(row).__name__}, not a mapping", "pass dicts"
            )
    columns, full_rows = _rows_with_union_columns(rows)
    return Dataset(name, None, format, columns, full_rows, _rows_hash(columns, full_rows))


def _rows_hash(columns: list[str], rows: list[dict[str, Any]]) -> str:
    canonical = json.dumps(
        {"columns": columns, "rows": rows},
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _rows_with_union_columns(
    objects: Sequence[Mapping[str, Any]],
    budget: _Budget | None = None,
    lines: Sequence[int] | None = None,
) -> tuple[list[str], list[dict[str, Any]]]:
    # Records often omit optional keys; every row gets every column, None where it was absent.
    columns = list(dict.fromkeys(key for obj in objects for key in obj))
    if budget is not None and len(objects) * len(columns) > budget.max_cells:
        # Not bounded by the file's size: a key of its own on every line makes a small file a
        # table of rows × rows cells. Name the row where the table went over.
        keys: set[str] = set()
        for count, obj in enumerate(objects, start=1):
            keys.update(obj)
            if count * len(keys) > budget.max_cells:
                budget.check_table(count, len(keys), lines[count - 1] if lines else None)
    rows = [{column: obj.get(column) for column in columns} for obj in objects]
    return columns, rows


def map_columns(dataset: Dataset, column_map: dict[str, str]) -> Dataset:
    """Expose data columns under the template's variable names (the originals stay)."""
    if not column_map:
        return dataset
    require_columns(dataset, sorted(set(column_map.values())), "the column mapping")
    rows = [{**row, **{var: row[col] for var, col in column_map.items()}} for row in dataset.rows]
    columns = list(dict.fromkeys([*dataset.columns, *column_map]))
    return replace(dataset, rows=rows, columns=columns)
