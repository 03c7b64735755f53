"""The connection half of the experiment store, shared by every feature mixin of Store.

Owns opening the engine (applying migrations), the reader and writer session factories and
turning database failures into a StoreError that names the fix. Each method of a mixin runs in
its own session from ``_session``, so one Store can be shared by web-server threads.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import CursorResult, Result
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from studio.store.engine import StoreError, make_engine, masked, writer_engine
from studio.store.migrate import upgrade

RowT = TypeVar("RowT")


class StoreBase:
    """Open (creating and migrating as needed) the database at a SQLAlchemy URL."""

    def __init__(self, url: str) -> None:
        self._engine = make_engine(url)
        try:
            upgrade(self._engine)
        except BaseException:
            self._engine.dispose()
            raise
        self._reader = sessionmaker(self._engine, expire_on_commit=False)
        self._writer = sessionmaker(writer_engine(self._engine), expire_on_commit=False)

    @property
    def url(self) -> str:
        """The database URL with any password hidden, safe to show and log."""
        return masked(self._engine.url)

    def close(self) -> None:
        self._engine.dispose()

    @contextmanager
    def _session(self, action: str, *, write: bool = False) -> Iterator[Session]:
        """One transaction; writers take SQLite's write lock at BEGIN (see writer_engine)."""
        factory = self._writer if write else self._reader
        try:
            with factory.begin() as session:
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(_failure_message(action, self.url, exc)) from exc


def _failure_message(action: str, url: str, exc: SQLAlchemyError) -> str:
    reason = exc.orig if isinstance(exc, DBAPIError) else exc
    if isinstance(exc, IntegrityError):
        fix = "a required field is missing or invalid; fix the record and log it again"
    elif isinstance(exc, DBAPIError):
        fix = (
            "check that the database is reachable and writable (for SQLite: free disk space, "
            "file permissions, no other process holding a long write lock)"
        )
    else:
        fix = "check the values passed to the store"
    return f"could not {action} in {url} ({reason}); {fix}"


def insert_unless_raced(session: Session, row: RowT, existing: Callable[[], RowT | None]) -> RowT:
    """Insert `row`; if a concurrent writer inserted the same unique key first, return theirs.

    Only PostgreSQL can race here: SQLite writers are serialized by BEGIN IMMEDIATE.
    """
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        found = existing()
        if found is None:
            raise
        return found
    return row


def rowcount(result: Result[Any]) -> int:
    """How many rows an UPDATE or DELETE matched."""
    assert isinstance(result, CursorResult)
    return result.rowcount
