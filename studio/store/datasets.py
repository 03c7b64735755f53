"""Datasets the studio has read, identified by the hash of their content.

Owns registering a dataset (idempotent: the same content is one row, whatever it is called or
wherever it lies) and turning dataset rows into DatasetRecord values.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from studio.store.base import StoreBase, insert_unless_raced
from studio.store.checks import check_dataset
from studio.store.records import DatasetRecord
from studio.store.schema import DatasetRow, utcnow


class DatasetsMixin(StoreBase):
    """Register datasets."""

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
            row = _dataset_by_hash(session, content_hash)
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
                    session, new, lambda: _dataset_by_hash(session, content_hash)
                )
            return to_dataset(row)


def to_dataset(row: DatasetRow) -> DatasetRecord:
    return DatasetRecord(
        id=row.id,
        name=row.name,
        path=row.path,
        format=row.format,
        content_hash=row.content_hash,
        n_rows=row.n_rows,
        columns=list(row.columns),
        created_at=row.created_at,
    )


def _dataset_by_hash(session: Session, content_hash: str) -> DatasetRow | None:
    stmt = select(DatasetRow).where(DatasetRow.content_hash == content_hash)
    return session.scalars(stmt).one_or_none()
