"""Datasets the studio has read, identified by the hash of their content.

Owns registering a dataset (idempotent: the same content is one row, whatever it is called or
wherever it lies) and reading a registered dataset back by id. Dataset rows become
DatasetRecord values through studio.store.rows, which other areas share.
"""

from __future__ import annotations

from studio.store.base import StoreBase, insert_unless_raced
from studio.store.checks import check_dataset
from studio.store.records import DatasetRecord
from studio.store.rows import dataset_by_hash, to_dataset
from studio.store.schema import DatasetRow, utcnow


class DatasetsMixin(StoreBase):
    """Register datasets and read them back."""

    def register_dataset(
        self,
        name: str,
        path: str | None,
        format: str,
        content_hash: str,
        n_rows: int,
        columns: list[str],
    ) -> DatasetRecord:
        """The dataset row for `content_hash`, inserted with these values if new.

        A dataset already registered under this hash is returned as first registered: its
        name, path and the rest are not updated.
        """
        check_dataset(name, path, format, content_hash, n_rows, columns)
        with self._session(f"register dataset {name!r}", write=True) as session:
            row = dataset_by_hash(session, content_hash)
            if row is None:
                new = DatasetRow(
                    name=name,
                    path=path,
                    format=format,
                    content_hash=content_hash,
                    n_rows=n_rows,
                    columns=list(columns),
                    created_at=utcnow(),
                )
                row = insert_unless_raced(
                    session, new, lambda: dataset_by_hash(session, content_hash)
                )
            return to_dataset(row)

    def get_dataset(self, dataset_id: int) -> DatasetRecord | None:
        with self._session(f"read dataset {dataset_id}") as session:
            row = session.get(DatasetRow, dataset_id)
            return None if row is None else to_dataset(row)
