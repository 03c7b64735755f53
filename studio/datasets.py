"""Tabular data sets: reading CSV/TSV/JSON/JSONL/Parquet files, splitting them, checking for leaks.

This module owns turning a user's file into rows the rest of the studio can trust. A file either
loads completely or fails with a DatasetError that names the file, the line and the problem, and
says how to fix it; nothing is ever partially returned. It also owns splitting one file into a
shot pool and an evaluation set, and counting rows two data sets share (the leak check).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import random
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parents[1]

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
DEFAULT_MAX_BYTES = 512 * 2**20
_UTF8_BOM = b"\xef\xbb\xbf"


class DatasetError(ValueError):
    """A data file the studio cannot use: '<file>: line N: <problem>. Fix: <what to do>'."""

    def __init__(self, source: str, problem: str, fix: str, line: int | None = None) -> None:
        where = f"{source}: line {line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{problem}. Fix: {fix}")
        self.source = source
        self.line = line
        self.problem = problem
        self.fix = fix


class _Bad(Exception):
    """Raised by the parsers, which do not know the file's name; load_dataset adds it."""

    def __init__(self, problem: str, fix: str, line: int | None = None) -> None:
        super().__init__(problem)
        self.problem, self.fix, self.line = problem, fix, line


@dataclass(frozen=True)
class Dataset:
    """A fully loaded table: every row is a dict with exactly the keys in `columns`."""

    name: str
    path: str | None
    format: str
    columns: list[str]
    rows: list[dict[str, Any]]
    content_hash: str

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
        """How errors name this data set: its path when it came from a file."""
        return self.path or self.name


# ---------------------------------------------------------------------------------------------
# Loading


def load_dataset(
    path: str | Path,
    format: str | None = None,
    name: str | None = None,
    max_bytes: int | None = None,
) -> Dataset:
    """Read a whole data file; the format comes from the suffix unless `format` is given.

    Raises DatasetError naming the file (and the line where there is one) for anything unusable:
    unknown format, too large, undecodable, malformed, or without rows. The size limit is
    max_bytes, by default STUDIO_MAX_UPLOAD_MB.
    """
    file = Path(path)
    source = str(file)
    _refuse_outside_demo_roots(file)
    fmt = _resolve_format(file, format)
    data = _read_bytes(file, max_bytes)
    try:
        columns, rows = _PARSERS[fmt](data)
    except _Bad as bad:
        raise DatasetError(source, bad.problem, bad.fix, bad.line) from None
    if not rows:
        raise DatasetError(source, "is empty: it has no data rows", "add rows to the file")
    return Dataset(
        name=name or file.stem,
        path=source,
        format=fmt,
        columns=columns,
        rows=rows,
        content_hash=hashlib.sha256(data).hexdigest(),
    )


def _resolve_format(file: Path, format: str | None) -> str:
    wanted = format if format is not None else file.suffix.lstrip(".")
    fmt = _FORMAT_NAMES.get(wanted.lower())
    if fmt is not None:
        return fmt
    if format is not None:
        problem = f"unknown format {format!r}"
    else:
        problem = f"cannot tell the format from the suffix {file.suffix or '(none)'!r}"
    raise DatasetError(
        str(file),
        f"{problem}; supported formats are {', '.join(SUPPORTED_FORMATS)}",
        f"rename the file to one of {_SUFFIXES} or pass format=",
    )


def demo_data_roots() -> list[Path] | None:
    """Where a demo-mode studio (STUDIO_DEMO=1, a public Space) may read data files from: the
    project's own samples and the browser's uploads. None when any path is allowed."""
    from studio.settings import SettingsError, get_settings

    try:
        if not get_settings().demo:
            return None
    except SettingsError:
        return None
    uploads = os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio"
    return [(PROJECT_ROOT / "assets").resolve(), Path(uploads).resolve()]


def _refuse_outside_demo_roots(file: Path) -> None:
    # On a public demo a path box must not become a way to read the server's files.
    roots = demo_data_roots()
    if roots is None:
        return
    resolved = file.expanduser().resolve()
    if not any(resolved.is_relative_to(root) for root in roots):
        raise DatasetError(
            str(file),
            "is outside the folders a demo studio reads data from (STUDIO_DEMO=1)",
            "upload the file instead, or use a sample from assets/sample",
        )


def upload_limit_bytes() -> int:
    """The size limit for data files: STUDIO_MAX_UPLOAD_MB (DEFAULT_MAX_BYTES if unreadable)."""
    from studio.settings import SettingsError, get_settings

    try:
        return get_settings().max_upload_mb * 2**20
    except SettingsError:
        return DEFAULT_MAX_BYTES


def _read_bytes(file: Path, max_bytes: int | None) -> bytes:
    source = str(file)
    if max_bytes is None:
        max_bytes = upload_limit_bytes()
    if not file.is_file():
        what = "is a directory" if file.is_dir() else "does not exist"
        raise DatasetError(source, what, "check the path (it must be a data file)")
    size = file.stat().st_size
    if size > max_bytes:
        raise _too_large(source, size, max_bytes)
    try:
        with file.open("rb") as handle:
            # Read one byte past the limit: a file that grew after stat() is still refused.
            data = handle.read(max_bytes + 1)
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


def _human_size(size: int) -> str:
    """'512 bytes', or '1.5 MiB (1572864 bytes)': readable, and exact for comparison."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit} ({size} bytes)"
        value /= 1024
    raise AssertionError("unreachable")


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


# ---------------------------------------------------------------------------------------------
# CSV / TSV


def _parse_csv(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    return _parse_delimited(_decode(data), delimiter=",", quotes=True)


def _parse_tsv(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    # TSV files such as GLUE's SST-2 contain bare quote characters inside unquoted text, so
    # quotes carry no meaning here: a tab always separates fields and a newline ends the row.
    return _parse_delimited(_decode(data), delimiter="\t", quotes=False)


def _parse_delimited(
    text: str, delimiter: str, quotes: bool
) -> tuple[list[str], list[dict[str, Any]]]:
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quoting=csv.QUOTE_MINIMAL if quotes else csv.QUOTE_NONE,
        strict=True,
    )
    records = _read_records(reader)
    if not records:
        raise _Bad("is empty", "the first line must be a header naming the columns")
    header = _check_header(records[0][2])
    if len(records) == 1:
        raise _Bad(
            f"is empty: it has a header ({', '.join(header)}) but no data rows",
            "add data rows below the header",
        )
    rows = [_record_to_row(header, start, end, fields) for start, end, fields in records[1:]]
    return header, rows


def _read_records(reader: Any) -> list[tuple[int, int, list[str]]]:
    """(first line, last line, fields) per non-blank record; a quoted field may span lines."""
    records: list[tuple[int, int, list[str]]] = []
    start = 1
    try:
        for fields in reader:
            if fields:
                records.append((start, reader.line_num, fields))
            start = reader.line_num + 1
    except csv.Error as exc:
        raise _explain_csv_error(str(exc), start, reader.line_num) from None
    return records


def _explain_csv_error(message: str, start: int, current: int) -> _Bad:
    quoting_fix = (
        "wrap a field that contains commas, quotes or line breaks in double quotes and double "
        'every quote inside it, e.g. "she said ""hi"""'
    )
    if "unexpected end of data" in message:
        # The reader only notices at the end of the file; the quote was opened in this record.
        return _Bad(
            "a quoted field in the row starting on this line is never closed "
            "(the file ends inside the quotes)",
            quoting_fix,
            start,
        )
    where = f" in the row that starts on line {start}" if start != current else ""
    if "expected after" in message:
        return _Bad(f"bad quoting ({message}){where}", quoting_fix, current)
    if "field larger than field limit" in message:
        # Usually a stray quote that swallowed the rest of the file; csv's limit is global, so
        # raising it here would change every other reader in the process.
        return _Bad(
            f"a field is too long ({message}){where}",
            "close any unclosed quote; for genuinely long texts use JSONL",
            current,
        )
    return _Bad(f"cannot be parsed ({message}){where}", "check this line of the file", current)


def _check_header(names: list[str]) -> list[str]:
    header = [name.strip() for name in names]
    for position, name in enumerate(header, start=1):
        if not name:
            raise _Bad(f"header column {position} has no name", "name every column", 1)
    seen: set[str] = set()
    for name in header:
        if name in seen:
            raise _Bad(f"duplicate column name {name!r} in the header", "rename one of them", 1)
        seen.add(name)
    return header


def _record_to_row(header: list[str], start: int, end: int, fields: list[str]) -> dict[str, Any]:
    if len(fields) == len(header):
        return dict(zip(header, fields, strict=True))
    span = f" (the row spans lines {start}-{end}; an unclosed quote may join lines)"
    raise _Bad(
        f"expected {len(header)} fields ({', '.join(header)}) but found {len(fields)}"
        + (span if end != start else ""),
        "give this row one value per header column (quote values that contain the delimiter)",
        start,
    )


# ---------------------------------------------------------------------------------------------
# JSON / JSONL / Parquet


def _parse_jsonl(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    return _rows_with_union_columns([obj for _, obj in _jsonl_objects(_decode(data))])


def _jsonl_objects(text: str) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line."""
    objects: list[tuple[int, dict[str, Any]]] = []
    # split("\n"), not splitlines(): JSON strings may legally hold U+2028 and other separators.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise _Bad(
                f"invalid JSON ({exc.msg} at column {exc.colno})",
                "each line must be one complete JSON object (a file holding a single JSON "
                "document should be named .json)",
                number,
            ) from None
        if not isinstance(value, dict):
            raise _Bad(
                f"expected a JSON object {{...}} but found {_json_type(value)}",
                'write one object per line, e.g. {"text": "...", "label": "..."}',
                number,
            )
        objects.append((number, value))
    return objects


def _parse_json(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    try:
        document = json.loads(_decode(data))
    except json.JSONDecodeError as exc:
        raise _Bad(
            f"invalid JSON ({exc.msg} at column {exc.colno})", "fix the JSON syntax", exc.lineno
        ) from None
    return _rows_with_union_columns(_json_records(document))


def _json_records(document: Any) -> list[dict[str, Any]]:
    fix = 'use a list of objects, [{"text": ...}, ...], or {"data": [{"text": ...}, ...]}'
    where = "the top-level list"
    if isinstance(document, dict):
        key = _records_key(document, fix)
        where, document = f"the list {key!r}", document[key]
    if not isinstance(document, list):
        raise _Bad(f"holds {_json_type(document)}, not a list of objects", fix)
    for position, item in enumerate(document, start=1):
        if not isinstance(item, dict):
            raise _Bad(f"item {position} of {where} is {_json_type(item)}, not an object", fix)
    return document


def _records_key(document: dict[str, Any], fix: str) -> str:
    """The key of the one list of rows in a wrapper object such as {"version": 2, "data": [...]}."""
    lists = [key for key, value in document.items() if isinstance(value, list)]
    # Other lists (tags, say) may sit beside the rows; only lists of objects can be the rows.
    records = [key for key in lists if all(isinstance(item, dict) for item in document[key])]
    if len(records) == 1:
        return records[0]
    if not records and len(lists) == 1:
        return lists[0]  # the only list: report its first non-object item precisely
    found = records or lists
    names = f" ({', '.join(found)})" if found else ""
    raise _Bad(f"is a JSON object with {len(found)} lists of rows{names}; expected one", fix)


def _json_type(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")


def _parse_parquet(data: bytes) -> tuple[list[str], list[dict[str, Any]]]:
    # Imported here: pyarrow takes a noticeable time to import and most files are not Parquet.
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _Bad(
            f"cannot be read as Parquet ({exc})", "check that it is a complete Parquet file"
        ) from None
    columns = [str(name) for name in table.column_names]
    if len(set(columns)) != len(columns):
        raise _Bad("has duplicate column names", "rename the columns so each is unique")
    return columns, table.to_pylist()


def _rows_with_union_columns(
    objects: Sequence[Mapping[str, Any]],
) -> tuple[list[str], list[dict[str, Any]]]:
    # Records often omit optional keys; every row gets every column, None where it was absent.
    columns = list(dict.fromkeys(key for obj in objects for key in obj))
    rows = [{column: obj.get(column) for column in columns} for obj in objects]
    return columns, rows


_PARSERS: dict[str, Callable[[bytes], tuple[list[str], list[dict[str, Any]]]]] = {
    "csv": _parse_csv,
    "tsv": _parse_tsv,
    "jsonl": _parse_jsonl,
    "json": _parse_json,
    "parquet": _parse_parquet,
}


# ---------------------------------------------------------------------------------------------
# In-memory data, column checks, splitting, leaks


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


# ---------------------------------------------------------------------------------------------
# Self-Instruct


def flatten_self_instruct(
    path: str | Path, name: str | None = None, max_bytes: int | None = None
) -> Dataset:
    """Self-Instruct seed tasks (JSONL with instruction + instances) as instruction/input/output.

    One row per instance, alpaca style; a missing or null input becomes "". The hash is that of
    the flattened rows (as for in-memory data), not of the file: the same file loaded as plain
    JSONL has different rows, and a store keyed by content hash must tell the two apart.
    """
    file = Path(path)
    data = _read_bytes(file, max_bytes)
    try:
        tasks = _jsonl_objects(_decode(data))
        rows = [row for line, task in tasks for row in _self_instruct_rows(line, task)]
    except _Bad as bad:
        raise DatasetError(str(file), bad.problem, bad.fix, bad.line) from None
    if not rows:
        raise DatasetError(str(file), "is empty: it has no tasks", "add tasks to the file")
    columns = ["instruction", "input", "output"]
    return Dataset(
        name=name or file.stem,
        path=str(file),
        format="jsonl",
        columns=columns,
        rows=rows,
        content_hash=_rows_hash(columns, rows),
    )


def _self_instruct_rows(line: int, task: dict[str, Any]) -> list[dict[str, Any]]:
    fix = 'each task needs "instruction" and "instances": [{"input": ..., "output": ...}]'
    instruction = task.get("instruction")
    instances = task.get("instances")
    if not isinstance(instruction, str) or not isinstance(instances, list) or not instances:
        raise _Bad("task lacks a text 'instruction' or a non-empty 'instances' list", fix, line)
    rows = []
    for position, instance in enumerate(instances, start=1):
        if not isinstance(instance, dict) or instance.get("output") is None:
            raise _Bad(f"instance {position} has no 'output'", fix, line)
        text = instance.get("input")
        rows.append({"instruction": instruction, "input": text or "", "output": instance["output"]})
    return rows
