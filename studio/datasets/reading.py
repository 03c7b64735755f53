"""A data file's bytes, read within the upload limit, and its text, decoded strictly as UTF-8."""

from __future__ import annotations

from pathlib import Path

from studio.datasets.bounds import _human_size
from studio.datasets.errors import DatasetError, _Bad
from studio.hosting import HostingPolicy

_UTF8_BOM = b"\xef\xbb\xbf"


def _byte_limit(policy: HostingPolicy, max_bytes: int | None) -> int:
    return policy.limits.upload_mb * 2**20 if max_bytes is None else max_bytes


def _read_bytes(file: Path, source: str, max_bytes: int) -> bytes:
    if not file.is_file():
        if file.is_dir():
            what = "is a directory"
        else:
            what = "is not a regular file" if file.exists() else "does not exist"
        raise DatasetError(source, what, "check the path (it must be a data file)")
    size = file.stat().st_size
    if size > max_bytes:
        raise _too_large(source, size, max_bytes)
    try:
        with file.open("rb") as handle:
            # Ask for the size stat() gave (read(n) reserves n bytes up front, so not for the
            # limit), then up to one byte past the limit: a file that grew is still refused.
            data = handle.read(size + 1)
            if len(data) > size:
                data += handle.read(max_bytes + 1 - len(data))
    except OSError as exc:
        raise DatasetError(
            source, f"cannot be read ({exc.strerror})", "check its permissions"
        ) from exc
    if len(data) > max_bytes:
        raise _too_large(source, len(data), max_bytes)
    return data


def _too_large(source: str, size: int, max_bytes: int) -> DatasetError:
    return DatasetError(
        source,
        f"is {_human_size(size)}, above the limit of {_human_size(max_bytes)}",
        "use a smaller file (e.g. a sample of the rows), or raise the limit "
        "(STUDIO_MAX_UPLOAD_MB, or max_bytes=)",
    )


def _decode(data: bytes) -> str:
    # Spreadsheet programs write a UTF-8 byte-order mark; it is not part of the first column name.
    body = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    if body.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in body[:4096]:
        # UTF-16/32 text (NUL bytes between ASCII letters) would otherwise "decode" as UTF-8
        # into column names full of NULs, or fail with a confusing field count.
        raise _Bad(
            "is not UTF-8 text: it starts with a UTF-16 byte-order mark or holds NUL bytes "
            "(UTF-16 or UTF-32 text, or a binary file)",
            "re-save the file as UTF-8 (e.g. 'Save as > CSV UTF-8' in a spreadsheet program)",
            1,
        )
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        column = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _Bad(
            f"byte 0x{body[exc.start]:02x} at column {column} is not valid UTF-8",
            "re-save the file as UTF-8 (e.g. 'Save as > CSV UTF-8' in a spreadsheet program)",
            line,
        ) from None
