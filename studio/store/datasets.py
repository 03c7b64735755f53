"""Datasets the studio has read, identified by the hash of their content.

Owns registering a dataset (idempotent: the same content is one row, whatever it is called or
wherever it lies) and reading a registered dataset back by id. Dataset rows become
DatasetRecord values through studio.store.rows, which other areas share.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from studio.store.base import StoreBase, insert_unless_raced
from studio.store.checks import check_dataset
from studio.store.records import DatasetRecord, DatasetVersion, check_choice
from studio.store.rows import dataset_by_hash, to_dataset
from studio.store.schema import DatasetRow, DatasetVersionRow, utcnow

DATASET_KINDS = ("pairs", "synthetic")


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

    def save_dataset_version(
        self, name: str, kind: str, dataset_id: int, lineage: dict[str, Any]
    ) -> DatasetVersion:
        """Record a written dataset as the next version of `name` (1, 2, ...)."""
        check_choice("kind", kind, DATASET_KINDS)
        for _ in range(3):  # two writers racing for the same version number: the loser retries
            with self._session(f"save dataset {name!r}", write=True) as session:
                latest = session.scalar(
                    select(func.max(DatasetVersionRow.version)).where(
                        DatasetVersionRow.name == name
                    )
                )
                row = DatasetVersionRow(
                    name=name,
                    version=(latest or 0) + 1,
                    kind=kind,
                    dataset_id=dataset_id,
                    lineage=lineage,
                    created_at=utcnow(),
                )
                try:
                    with session.begin_nested():
                        session.add(row)
                except IntegrityError:
                    continue
                session.refresh(row)
                return to_version(row)
        raise ValueError(f"could not number a new version of dataset {name!r}; try again")

    def dataset_versions(self, name: str | None = None) -> list[DatasetVersion]:
        """Every written dataset version (of `name` only, if given), newest first."""
        stmt = select(DatasetVersionRow).order_by(
            DatasetVersionRow.created_at.desc(), DatasetVersionRow.id.desc()
        )
        if name is not None:
            stmt = stmt.where(DatasetVersionRow.name == name)
        with self._session("list written datasets") as session:
            return [to_version(row) for row in session.scalars(stmt)]

    def get_dataset_version(self, name: str, version: int | None = None) -> DatasetVersion | None:
        """Version `version` of dataset `name` (the latest if None), or None."""
        versions = self.dataset_versions(name)
        if version is None:
            return max(versions, key=lambda v: v.version, default=None)
        return next((v for v in versions if v.version == version), None)


def to_version(row: DatasetVersionRow) -> DatasetVersion:
    return DatasetVersion(
        id=row.id,
        name=row.name,
        version=row.version,
        kind=row.kind,
        dataset=to_dataset(row.dataset),
        lineage=row.lineage,
        created_at=row.created_at,
    )
