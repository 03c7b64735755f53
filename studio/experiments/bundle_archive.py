"""Opening an experiment bundle's zip within the hosting policy's limits.

Owns everything between the file on disk and parsed JSON. The limits are checked from the
archive's own directory before any member is decompressed: its size on disk, its member count
(from the end-of-directory record, before zipfile reads the directory), every member's
uncompressed size and compression ratio. A directory can lie, so each member is then
decompressed in chunks with a hard cap. JSON is parsed with bounded nesting and numbers (no NaN,
no infinities, at most 19 digits), so a hostile file gets a clear error, not a RecursionError or
a number the database cannot hold.
"""

from __future__ import annotations

import json
import math
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

from studio.experiments.bundle_schema import BundleError
from studio.hosting import Limits

MAX_DEPTH = 32  # the deepest real bundle value (a run's config) is 4 levels down
MAX_DIGITS = 19  # an integer must fit in 64 bits
RATIO_FLOOR = 64 * 1024  # members smaller than this may compress as well as they like
DIRECTORY_BYTES_PER_MEMBER = 1024  # a directory entry is 46 bytes plus a short name
CHUNK = 1 << 20
_END = struct.Struct("<4s4H2LH")  # end of central directory record
_END_SIGNATURE = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_LOCATOR_SIZE = 20
_COMPRESSIONS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
_SIZE_SETTING = "STUDIO_MAX_BUNDLE_MB"


class BundleArchive:
    """An opened bundle whose directory passed the limits; `load` reads one member."""

    def __init__(self, path: Path, limits: Limits) -> None:
        self.path, self.limits = path, limits
        self.cap = limits.bundle_mb * 2**20
        self._check_disk_size()
        with open(path, "rb") as handle:
            self._check_directory_record(handle)
        try:
            self._zip = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, struct.error, EOFError):
            raise self._not_a_zip() from None
        try:
            self.infos = {info.filename: info for info in self._check_members()}
        except BaseException:
            self._zip.close()
            raise
        self.names = set(self.infos)
        self._read = 0

    def __enter__(self) -> BundleArchive:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._zip.close()

    def load(self, name: str) -> Any:
        """The member's JSON (a list of rows for .jsonl), decompressed with a hard cap."""
        return parse_json(self._bytes(self.infos[name]), name)

    # -- limits from the directory, before anything is decompressed -------------------------

    def _check_disk_size(self) -> None:
        size = self.path.stat().st_size
        if size > self.cap + 2**20:  # a zip is never much larger than its contents
            raise self._too_large(f"is {_mib(size)} on disk")

    def _check_directory_record(self, handle: Any) -> None:
        """The member count and directory size from the end record, before zipfile reads (and
        allocates) the whole directory. ZIP64 and multi-disk archives are refused: an exported
        bundle is neither."""
        handle.seek(0, 2)
        size = handle.tell()
        window = min(size, _END.size + 0xFFFF + _ZIP64_LOCATOR_SIZE)
        handle.seek(size - window)
        tail = handle.read(window)
        at = len(tail) - _END.size
        if at < 0 or tail[at : at + 4] != _END_SIGNATURE:
            at = tail.rfind(_END_SIGNATURE)
        if at < 0 or len(tail) - at < _END.size:
            raise self._not_a_zip()
        _, disk, directory_disk, _, members, directory_size, offset, _ = _END.unpack_from(tail, at)
        zip64 = tail[max(0, at - _ZIP64_LOCATOR_SIZE) : at].startswith(_ZIP64_LOCATOR)
        if zip64 or 0xFFFF in (members, disk) or 0xFFFFFFFF in (directory_size, offset):
            raise self._too_many("is a ZIP64 archive (for more than 65,535 members or 4 GiB)")
        if disk or directory_disk:
            raise BundleError(f"{self.path.name}: a multi-part zip; give the single .zip file")
        if members > self.limits.bundle_members:
            raise self._too_many(f"has {members:,} members")
        if directory_size > self.limits.bundle_members * DIRECTORY_BYTES_PER_MEMBER:
            raise self._too_many(f"has a {_mib(directory_size)} member directory")

    def _check_members(self) -> Iterator[zipfile.ZipInfo]:
        infos = self._zip.infolist()
        if len(infos) > self.limits.bundle_members:
            raise self._too_many(f"has {len(infos):,} members")
        seen: set[str] = set()
        total = 0
        for info in infos:
            if info.filename in seen:
                raise BundleError(f"{self.path.name}: holds {info.filename} twice; re-export it")
            seen.add(info.filename)
            if info.flag_bits & 0x1:
                raise BundleError(f"{self.path.name}: {info.filename} is encrypted; re-export it")
            if info.compress_type not in _COMPRESSIONS:
                raise BundleError(
                    f"{self.path.name}: {info.filename} uses zip compression method "
                    f"{info.compress_type}; bundles are stored or deflated. Re-export it"
                )
            total += info.file_size
            if total > self.cap:
                raise self._too_large(f"holds more than {_mib(total)} uncompressed")
            self._check_ratio(info)
            yield info

    def _check_ratio(self, info: zipfile.ZipInfo) -> None:
        limit = self.limits.bundle_ratio
        if info.file_size > RATIO_FLOOR and info.file_size > limit * max(info.compress_size, 1):
            ratio = info.file_size / max(info.compress_size, 1)
            raise BundleError(
                f"{self.path.name}: {info.filename} expands {ratio:,.0f}-fold ("
                f"{_mib(info.compress_size)} to {_mib(info.file_size)}), more than the limit of "
                f"{limit}-fold (the hosting policy's bundle_ratio); an exported bundle never "
                "compresses that well, so this looks like a zip bomb. Fix: re-export the bundle"
            )

    # -- reading, with a cap that holds whatever the directory says ------------------------

    def _bytes(self, info: zipfile.ZipInfo) -> bytes:
        cap = min(info.file_size, self.cap - self._read)
        data = bytearray()
        try:
            with self._zip.open(info) as stream:
                while len(data) <= cap:
                    chunk = stream.read(min(CHUNK, cap + 1 - len(data)))
                    if not chunk:
                        break
                    data += chunk
        except BundleError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, OSError) as exc:
            raise BundleError(
                f"{self.path.name}: {info.filename} is damaged ({exc}); re-export the bundle"
            ) from None
        if len(data) > cap:
            raise self._too_large(f"holds more than {_mib(self._read + len(data))} uncompressed")
        self._read += len(data)
        return bytes(data)

    # -- messages ------------------------------------------------------------------------------

    def _not_a_zip(self) -> BundleError:
        return BundleError(f"{self.path.name}: not a zip file; an experiment bundle is a .zip")

    def _too_large(self, what: str) -> BundleError:
        return BundleError(
            f"{self.path.name}: {what}, above this studio's limit of {self.limits.bundle_mb} MiB "
            f"for a bundle's contents (the limit is {_SIZE_SETTING}). Fix: export fewer runs per "
            f"bundle, or raise {_SIZE_SETTING} (on a hosted studio, ask its operator)"
        )

    def _too_many(self, what: str) -> BundleError:
        return BundleError(
            f"{self.path.name}: {what}, above the limit of {self.limits.bundle_members} members "
            "(the hosting policy's bundle_members); an exported bundle has 8. This is not a "
            "bundle `studio runs bundle export` wrote"
        )


def parse_json(data: bytes, name: str) -> Any:
    """JSON (or, for .jsonl, a list of one value per non-blank line), bounded."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleError(f"{name}: not UTF-8 text (byte {exc.start}); re-export it") from None
    del data
    if not name.endswith(".jsonl"):
        return _loads(text, name, None)
    return [_loads(line, name, n) for n, line in _lines(text) if line.strip()]


def _lines(text: str) -> Iterator[tuple[int, str]]:
    start, number = 0, 1
    while start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        yield number, text[start:end]
        start, number = end + 1, number + 1


def _loads(text: str, name: str, line: int | None) -> Any:
    where = f"{name}: line {line}" if line is not None else name
    try:
        value = json.loads(
            text, parse_constant=_no_constant, parse_float=_finite, parse_int=_integer
        )
    except _NumberError as exc:
        raise BundleError(f"{where}: {exc}; bundle numbers are finite and fit in 64 bits") from None
    except json.JSONDecodeError as exc:
        at = line if line is not None else exc.lineno
        raise BundleError(f"{name}: not valid JSON (line {at}: {exc.msg})") from None
    except RecursionError:
        raise _too_deep(where) from None
    _check_nesting(value, where)
    return value


class _NumberError(ValueError):
    pass


def _no_constant(text: str) -> Any:
    raise _NumberError(f"{text} is not a number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _NumberError(f"{text[:30]} is too large for a number")
    return value


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _NumberError(f"an integer of {len(text.lstrip('-'))} digits")
    return int(text)


def _check_nesting(value: Any, where: str) -> None:
    """No value nested deeper than MAX_DEPTH, no NUL in any text (PostgreSQL refuses it)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            if depth > MAX_DEPTH:
                raise _too_deep(where)
            for key, child in item.items():
                if "\x00" in key:
                    raise BundleError(f"{where}: a key holds a NUL character; re-export it")
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                raise _too_deep(where)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str) and "\x00" in item:
            raise BundleError(f"{where}: a text holds a NUL character; re-export it")


def _too_deep(where: str) -> BundleError:
    return BundleError(
        f"{where}: JSON nested more than {MAX_DEPTH} levels deep, above the bundle format's "
        "limit (a real bundle nests 4 levels). This is not a bundle `studio runs bundle export` "
        "wrote"
    )


def _mib(size: int) -> str:
    return f"{size / 2**20:,.1f} MiB" if size >= 2**20 else f"{size:,} bytes"
