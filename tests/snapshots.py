"""Content snapshots for "changed nothing" checks, and a watch that proves a file was not opened.

A snapshot hashes what a studio holds by content, never by size or count: the sha256 of every
file under the folders involved, and, for the SQLite store, the sha256 of each table's full rows
in a stable order (plus the schema and PRAGMA integrity_check). So a refusal that leaves a
half-written file, rewrites one byte, or updates a row in place shows up, named, in the diff.

The store's own files (studio.db and its -wal/-shm/-journal) are compared through their rows, not
their bytes: SQLite rewrites those on its own (the -shm index on every read, the WAL at a
checkpoint or a rolled-back spill) without any row changing.

`OpenWatch` uses Linux inotify (through ctypes, no extra package): it sees every open of a
watched file by this process or any other, from Python or C code alike.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import os
import sqlite3
import stat
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path

Digests = dict[str, str]  # name (a relative path or a table) -> what its content hashes to
Snapshot = dict[str, Digests]  # part (home, adapters, tables, ...) -> its digests

SQLITE_FILES = ("studio.db", "studio.db-wal", "studio.db-shm", "studio.db-journal")


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digests(folder: Path, skip: Iterable[str] = ()) -> Digests:
    """Every entry below `folder` (hidden and temp files too) -> sha256 of its bytes.

    Symlinks are recorded by target and not followed (a studio home links the shared models);
    FIFOs and other special files by kind, never opened. `skip` names relative paths to leave
    out. An empty folder is recorded too, so a refusal that creates one is seen.
    """
    skipped = set(skip)
    found: Digests = {}
    if not folder.exists():
        return found
    for top, dirs, files in os.walk(folder, followlinks=False):
        for name in sorted(dirs + files):
            path = Path(top, name)
            key = str(path.relative_to(folder))
            if key in skipped:
                continue
            mode = path.lstat().st_mode
            if stat.S_ISLNK(mode):
                found[key] = f"symlink -> {os.readlink(path)}"
            elif stat.S_ISDIR(mode):
                found[key] = "folder"
            elif stat.S_ISREG(mode):
                found[key] = f"{path.lstat().st_size} bytes, sha256 {_sha256_file(path)}"
            else:
                found[key] = f"special file (mode {oct(mode)})"
    return found


def table_digests(db: Path) -> Digests:
    """Every table of a SQLite store -> its row count and the sha256 of all its rows.

    Rows are sorted by their repr (a stable order for any table, rowid or not), so the same
    content always hashes the same. The schema and integrity_check are two more entries.
    """
    if not db.exists():
        return {}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30) as conn:
        schema = conn.execute(
            "select type, name, tbl_name, sql from sqlite_master order by type, name"
        ).fetchall()
        found: Digests = {
            "(schema)": hashlib.sha256(repr(schema).encode()).hexdigest(),
            "(integrity_check)": conn.execute("pragma integrity_check").fetchone()[0],
        }
        for kind, name, _table, _sql in schema:
            if kind != "table" or name.startswith("sqlite_stat"):
                continue  # sqlite_stat* is the planner's own statistics, not the studio's data
            rows = sorted(repr(row) for row in conn.execute(f'select * from "{name}"'))
            digest = hashlib.sha256("\n".join(rows).encode()).hexdigest()
            found[name] = f"{len(rows)} rows, sha256 {digest}"
    return found


def store_snapshot(home: Path) -> Snapshot:
    """A studio home: its store's tables by content and every other file under it."""
    return {
        "tables": table_digests(home / "studio.db"),
        "home": file_digests(home, skip=SQLITE_FILES),
    }


def changes(before: Snapshot, after: Snapshot) -> list[str]:
    """What differs, one readable line per changed, added or removed entry."""
    lines = []
    for part in sorted(set(before) | set(after)):
        old, new = before.get(part, {}), after.get(part, {})
        for key in sorted(set(old) | set(new)):
            if key not in old:
                lines.append(f"{part}: {key} appeared ({new[key]})")
            elif key not in new:
                lines.append(f"{part}: {key} disappeared (was {old[key]})")
            elif old[key] != new[key]:
                lines.append(f"{part}: {key} changed: {old[key]} -> {new[key]}")
    return lines


def assert_unchanged(before: Snapshot, after: Snapshot, what: str) -> None:
    found = changes(before, after)
    assert not found, f"{what} changed the studio's state:\n  " + "\n  ".join(found)


# --- inotify: was a file opened? ---------------------------------------------------------------

_IN_ACCESS, _IN_OPEN = 0x00000001, 0x00000020
_IN_NONBLOCK, _IN_CLOEXEC = 0o4000, 0o2000000
_EVENT = struct.Struct("iIII")  # wd, mask, cookie, len (then len bytes of name)


class OpenWatch:
    """Records every open (and read) of the given files while active.

    with OpenWatch([path]) as watch:
        refuse(path)
    assert watch.events == []
    """

    def __init__(self, paths: Iterable[Path]) -> None:
        self.paths = [Path(p) for p in paths]
        self.events: list[str] = []  # 'PATH: open' / 'PATH: read', in order
        self._fd = -1
        self._names: Mapping[int, Path] = {}

    def __enter__(self) -> OpenWatch:
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        self._fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        names = {}
        for path in self.paths:
            wd = libc.inotify_add_watch(self._fd, os.fsencode(path), _IN_OPEN | _IN_ACCESS)
            if wd < 0:
                raise OSError(ctypes.get_errno(), f"inotify_add_watch failed for {path}")
            names[wd] = path
        self._names = names
        return self

    def _drain(self) -> None:
        while True:
            try:
                data = os.read(self._fd, 65536)
            except BlockingIOError:
                return
            offset = 0
            while offset < len(data):
                wd, mask, _cookie, length = _EVENT.unpack_from(data, offset)
                offset += _EVENT.size + length
                what = "open" if mask & _IN_OPEN else "read"
                self.events.append(f"{self._names.get(wd, wd)}: {what}")

    def __exit__(self, *exc: object) -> None:
        try:
            self._drain()
        finally:
            os.close(self._fd)
