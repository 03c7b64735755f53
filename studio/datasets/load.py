"""load_dataset: a data file's format from its suffix, its bytes within limits, its rows."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from studio.datasets.bounds import _Budget
from studio.datasets.delimited import _parse_csv, _parse_tsv
from studio.datasets.errors import DatasetError, _Bad
from studio.datasets.json_formats import _parse_json, _parse_jsonl
from studio.datasets.parquet import _parse_parquet
from studio.datasets.reading import _byte_limit, _read_bytes
from studio.datasets.table import Dataset
from studio.hosting import HostingPolicy

SUPPORTED_FORMATS = ("csv", "tsv", "jsonl", "json", "parquet")
_FORMAT_NAMES = {
    "csv": "csv",
    "tsv": "tsv",
    "tab": "tsv",
    "jsonl": "jsonl",
    "ndjson": "jsonl",
    "json": "json",
    "parquet": "parquet",
}
_SUFFIXES = ".csv .tsv .tab .jsonl .ndjson .json .parquet"


def load_dataset(
    path: str | Path,
    name: str | None = None,
    format: str | None = None,
    *,
    policy: HostingPolicy,
    max_bytes: int | None = None,
) -> Dataset:
    """Read a whole data file; the format comes from the suffix unless `format` is given.

    The policy decides first whether the path may be read at all (PolicyRefusal, before the
    file is looked at), then bounds the file: max_bytes on disk (default STUDIO_MAX_UPLOAD_MB),
    and decoded, limits.data_cells cells and limits.data_mb MiB of text. Raises DatasetError
    naming the file as the policy shows it (and the line where there is one) for anything
    unusable: unknown format, too large, undecodable, malformed, or without rows.
    """
    resolved = policy.check_data_path(path)
    file = Path(path)
    source = policy.shown_path(path)
    fmt = _resolve_format(file, format, source)
    data = _read_bytes(resolved, source, _byte_limit(policy, max_bytes))
    try:
        columns, rows = _PARSERS[fmt](data, _Budget(policy.limits))
    except _Bad as bad:
        raise DatasetError(source, bad.problem, bad.fix, bad.line) from None
    if not rows:
        raise DatasetError(source, "is empty: it has no data rows", "add rows to the file")
    return Dataset(
        name=name or file.stem,
        path=str(file),
        format=fmt,
        columns=columns,
        rows=rows,
        content_hash=hashlib.sha256(data).hexdigest(),
        shown=source,
    )


def _resolve_format(file: Path, format: str | None, source: str) -> str:
    wanted = format if format is not None else file.suffix.lstrip(".")
    fmt = _FORMAT_NAMES.get(wanted.lower())
    if fmt is not None:
        return fmt
    if format is not None:
        problem = f"unknown format {format!r}"
    else:
        problem = f"cannot tell the format from the suffix {file.suffix or '(none)'!r}"
    raise DatasetError(
        source,
        f"{problem}; supported formats are {', '.join(SUPPORTED_FORMATS)}",
        f"rename the file to one of {_SUFFIXES} or pass format=",
    )


_PARSERS: dict[str, Callable[[bytes, _Budget], tuple[list[str], list[dict[str, Any]]]]] = {
    "csv": _parse_csv,
    "tsv": _parse_tsv,
    "jsonl": _parse_jsonl,
    "json": _parse_json,
    "parquet": _parse_parquet,
}
