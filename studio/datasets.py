"""Tabular data sets: reading CSV/TSV/JSON/JSONL/Parquet files, splitting them, checking for leaks.

This module owns turning a user's file into rows the rest of the studio can trust. A file either
loads completely or fails with a DatasetError that names the file, the line and the problem, and
says how to fix it; nothing is ever partially returned. It also owns splitting one file into a
shot pool and an evaluation set, and counting rows two data sets share (the leak check).

Every read goes through the deployment's HostingPolicy: which paths a visitor may name, how a
path appears in messages, and how large a file may be, on disk and decoded. The decoded size is
bounded while the file is parsed, before the rows exist: a small file must not become gigabytes
of rows (a Parquet column of one long string repeated, a CSV line of empty fields, JSON nested
thousands of levels deep).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.hosting import HostingPolicy, Limits

if TYPE_CHECKING:
    import pyarrow as pa

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
_UTF8_BOM = b"\xef\xbb\xbf"
# Deepest nesting of lists and objects a JSON/JSONL file may have, counted from the outermost
# bracket (a row object in a top-level list is level 2, a list in one of its cells level 3).
MAX_JSON_DEPTH = 64
_PARQUET_BATCH_ROWS = 8192
_PARQUET_BATCH_FIXED_BYTES = 64 * 2**20


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


# ---------------------------------------------------------------------------------------------
# Loading


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


class _Budget:
    """What a file may decode to (limits.data_cells, limits.data_mb), spent while it is parsed.

    Cells are rows × columns, plus the items of lists and objects held inside cells; text is
    counted in characters (bytes for binary values), a MiB being 2**20 of them.
    """

    def __init__(self, limits: Limits) -> None:
        self.max_cells = limits.data_cells
        self.max_mb = limits.data_mb
        self.max_chars = limits.data_mb * 2**20
        self.cells = 0
        self.chars = 0

    def may_exceed(self, text_chars: int) -> bool:
        """False when text of this length cannot reach either limit: a delimited file has at
        most one field per character (plus one), and no format decodes more text than it holds.
        The parsers skip counting then (the common case, and the fast one)."""
        return text_chars + 1 > self.max_cells or text_chars > self.max_chars

    def add(self, cells: int, chars: int, line: int | None = None, where: str = "") -> None:
        self.cells += cells
        self.chars += chars
        if self.cells > self.max_cells:
            raise self.too_many_cells(line, where)
        if self.chars > self.max_chars:
            raise self.too_much_text(line, where)

    def check_table(self, rows: int, columns: int, line: int | None = None) -> None:
        """Rows × columns of the table as it will be built (every row gets every column)."""
        if rows * columns > self.max_cells:
            by = " by this line" if line is not None else ""
            raise self.too_many_cells(line, f" ({rows} rows × {columns} columns{by})")

    def too_many_cells(self, line: int | None = None, where: str = "") -> _Bad:
        return _Bad(
            f"decodes to more than {self.max_cells:,} cells (rows × columns, counting the items "
            f"of lists and objects inside cells){where}; the limit is STUDIO_MAX_DATA_CELLS",
            _limit_fix("STUDIO_MAX_DATA_CELLS"),
            line,
        )

    def too_much_text(self, line: int | None = None, where: str = "") -> _Bad:
        return _Bad(
            f"decodes to more than {self.max_mb} MiB of text{where}; the limit is "
            "STUDIO_MAX_DATA_MB",
            _limit_fix("STUDIO_MAX_DATA_MB"),
            line,
        )


def _limit_fix(setting: str) -> str:
    return (
        f"split the file into smaller files (or keep fewer rows or columns), or raise {setting} "
        "(on a hosted studio, ask its operator)"
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


def _parse_csv(data: bytes, budget: _Budget) -> tuple[list[str], list[dict[str, Any]]]:
    return _parse_delimited(_decode(data), budget, delimiter=",", quotes=True)


def _parse_tsv(data: bytes, budget: _Budget) -> tuple[list[str], list[dict[str, Any]]]:
    # TSV files such as GLUE's SST-2 contain bare quote characters inside unquoted text, so
    # quotes carry no meaning here: a tab always separates fields and a newline ends the row.
    return _parse_delimited(_decode(data), budget, delimiter="\t", quotes=False)


def _parse_delimited(
    text: str, budget: _Budget, delimiter: str, quotes: bool
) -> tuple[list[str], list[dict[str, Any]]]:
    # csv's field_size_limit (128 KiB by default) bounds one field; the budget bounds them all,
    # whatever the process-wide limit is (another library may have raised it).
    reader = csv.reader(
        io.StringIO(text, newline=""),
        delimiter=delimiter,
        quoting=csv.QUOTE_MINIMAL if quotes else csv.QUOTE_NONE,
        strict=True,
    )
    records = _read_records(reader, budget if budget.may_exceed(len(text)) else None)
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


def _read_records(reader: Any, budget: _Budget | None) -> list[tuple[int, int, list[str]]]:
    """(first line, last line, fields) per non-blank record; a quoted field may span lines.

    With a budget, every record's fields and text are counted as it is read, and reading stops
    at the record that goes over; without one (a text too short to reach the limits), nothing
    is counted."""
    records: list[tuple[int, int, list[str]]] = []
    start = 1
    try:
        for fields in reader:
            if fields:
                records.append((start, reader.line_num, fields))
                if budget is not None:
                    budget.add(len(fields), sum(map(len, fields)), start)
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


def _parse_jsonl(data: bytes, budget: _Budget) -> tuple[list[str], list[dict[str, Any]]]:
    numbered = _jsonl_objects(_decode(data), budget)
    lines = [number for number, _ in numbered]
    return _rows_with_union_columns([obj for _, obj in numbered], budget, lines)


def _jsonl_objects(text: str, budget: _Budget) -> list[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line, each within the budget and the depth."""
    objects: list[tuple[int, dict[str, Any]]] = []
    count = budget.may_exceed(len(text))
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
        except RecursionError:
            raise _too_deep(number) from None
        except ValueError as exc:  # e.g. an integer beyond Python's digit limit
            raise _unreadable_number(exc, number) from None
        if not isinstance(value, dict):
            raise _Bad(
                f"expected a JSON object {{...}} but found {_json_type(value)}",
                'write one object per line, e.g. {"text": "...", "label": "..."}',
                number,
            )
        # More opening brackets than MAX_JSON_DEPTH are needed to nest too deeply.
        if count or line.count("[") + line.count("{") > MAX_JSON_DEPTH:
            items, chars = _json_size(value, 1, count)
            if items < 0:
                raise _too_deep(number)
            budget.add(items, chars, number)
        objects.append((number, value))
    return objects


def _parse_json(data: bytes, budget: _Budget) -> tuple[list[str], list[dict[str, Any]]]:
    text = _decode(data)
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _Bad(
            f"invalid JSON ({exc.msg} at column {exc.colno})", "fix the JSON syntax", exc.lineno
        ) from None
    except RecursionError:
        raise _too_deep(_line_too_deep(text)) from None
    except ValueError as exc:  # e.g. an integer beyond Python's digit limit
        raise _unreadable_number(exc) from None
    items, chars = _json_size(document, 1, budget.may_exceed(len(text)))
    if items < 0:
        raise _too_deep(_line_too_deep(text))
    budget.add(items, chars)
    return _rows_with_union_columns(_json_records(document), budget)


def _json_size(root: Any, level: int, text: bool = True) -> tuple[int, int]:
    """(items in all its lists and objects, characters of text in keys and strings, or 0 unless
    `text`) of a parsed JSON value whose outermost container is at nesting `level`; items is -1
    when some list or object lies deeper than MAX_JSON_DEPTH. Iterative: the depth a file has
    cannot make this (or the code that later walks its rows) recurse too deeply."""
    if not isinstance(root, (dict, list)):
        return 0, len(root) if text and isinstance(root, str) else 0
    items = chars = 0
    stack: list[tuple[Any, int]] = [(root, level)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_JSON_DEPTH:
            return -1, chars
        items += len(node)
        if type(node) is dict:
            if text:
                chars += sum(map(len, node))
            values = node.values()
        else:
            values = node
        for value in values:
            kind = type(value)
            if kind is str:
                if text:
                    chars += len(value)
            elif kind is dict or kind is list:
                stack.append((value, depth + 1))
    return items, chars


_JSON_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _line_too_deep(text: str) -> int | None:
    """The line where nesting first goes past MAX_JSON_DEPTH (brackets inside strings skipped)."""
    depth = 0
    for match in _JSON_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return text.count("\n", 0, match.start()) + 1
        elif token in "]}":
            depth -= 1
    return None


def _too_deep(line: int | None) -> _Bad:
    return _Bad(
        f"lists and objects are nested more than {MAX_JSON_DEPTH} levels deep",
        "flatten the data: a cell holds text, a number or a shallow list or object",
        line,
    )


def _unreadable_number(exc: ValueError, line: int | None = None) -> _Bad:
    reason = str(exc).split("; use sys.")[0]  # the remedy Python suggests is not the user's
    return _Bad(f"cannot be read as JSON ({reason})", "write very long numbers as strings", line)


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


def _parse_parquet(data: bytes, budget: _Budget) -> tuple[list[str], list[dict[str, Any]]]:
    """Rows of a Parquet file, refused from its metadata when that already says too large, then
    decoded a batch of rows at a time with the budget checked before each batch becomes Python
    values (metadata can lie). Text columns are read as dictionaries, so one long string
    repeated on every row is measured, not materialised, before the check."""
    # Imported here: pyarrow takes a noticeable time to import and most files are not Parquet.
    import pyarrow as pa
    import pyarrow.parquet as pq

    fix = "check that it is a complete Parquet file"
    try:
        footer = pq.ParquetFile(io.BytesIO(data))
        schema = footer.schema_arrow
        columns = [str(name) for name in schema.names]
        if len(set(columns)) != len(columns):
            raise _Bad("has duplicate column names", "rename the columns so each is unique")
        batch_rows = _check_parquet_metadata(footer, len(columns), budget)
        text_leaves = [
            footer.schema.column(j).path
            for j in range(footer.metadata.num_columns)
            if footer.schema.column(j).physical_type == "BYTE_ARRAY"
        ]
        reader = pq.ParquetFile(
            io.BytesIO(data), metadata=footer.metadata, read_dictionary=text_leaves
        )
        rows: list[dict[str, Any]] = []
        for batch in reader.iter_batches(batch_size=batch_rows):
            cells, chars = batch.num_rows * batch.num_columns, 0
            for column in batch.columns:
                items, text = _arrow_size(column)
                cells, chars = cells + items, chars + text
            budget.add(cells, chars, where=f" (within its first {len(rows) + len(batch)} rows)")
            rows.extend(_undictionary(batch, schema).to_pylist())
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise _Bad(f"cannot be read as Parquet ({exc})", fix) from None
    return columns, rows


def _undictionary(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with the file's own column types: its size is checked, so the text columns
    read as dictionaries may be decoded now (converting decoded ones to Python is far faster)."""
    import pyarrow as pa

    try:
        return batch.cast(schema)
    except (pa.ArrowException, ValueError, TypeError):
        return batch  # a type cast cannot rebuild: to_pylist decodes dictionaries as well


def _check_parquet_metadata(footer: Any, n_columns: int, budget: _Budget) -> int:
    """Refuse from the footer alone what it says is too large; the rows per decoded batch."""
    meta = footer.metadata
    groups = [meta.row_group(i) for i in range(meta.num_row_groups)]
    rows = max(meta.num_rows, sum(group.num_rows for group in groups), 0)
    values = decoded = 0
    fixed_width = 0  # bytes per row of fixed-size binary columns: never dictionary-decoded
    for j in range(meta.num_columns):
        leaf = footer.schema.column(j)
        width = max(leaf.length or 0, 0) if leaf.physical_type == "FIXED_LEN_BYTE_ARRAY" else 0
        fixed_width += width
        for group in groups:
            chunk = group.column(j)
            count = max(chunk.num_values, 0)
            values += count
            decoded += max(chunk.total_uncompressed_size, width * count, 0)
    cells = max(rows * n_columns, values)
    if cells > budget.max_cells:
        raise _Bad(
            f"has {rows:,} rows × {n_columns} columns ({cells:,} values) by its metadata, more "
            f"than the {budget.max_cells:,} cells a data file may decode to; the limit is "
            "STUDIO_MAX_DATA_CELLS",
            _limit_fix("STUDIO_MAX_DATA_CELLS"),
        )
    if decoded > budget.max_chars:
        raise _Bad(
            f"decodes to more than {budget.max_mb} MiB: its metadata gives "
            f"{_human_size(decoded)} uncompressed; the limit is STUDIO_MAX_DATA_MB",
            _limit_fix("STUDIO_MAX_DATA_MB"),
        )
    return max(1, min(_PARQUET_BATCH_ROWS, _PARQUET_BATCH_FIXED_BYTES // max(fixed_width, 1)))


def _arrow_size(array: pa.Array) -> tuple[int, int]:
    """(items in its lists, maps and structs, characters or bytes of its text and binary
    values) of an Arrow column, computed without converting it to Python."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_dictionary(kind):
        lengths = _arrow_lengths(array.dictionary)
        if lengths is None:
            return 0, 0
        return 0, _arrow_sum(pc.take(lengths, array.indices))
    lengths = _arrow_lengths(array)
    if lengths is not None:
        return 0, _arrow_sum(lengths)
    if pa.types.is_fixed_size_binary(kind):
        return 0, (len(array) - array.null_count) * kind.byte_width
    if pa.types.is_map(kind):
        parts = [array.keys, array.items]
        items = len(array.keys)
    elif any(getattr(pa.types, test)(kind) for test in _ARROW_LISTS):
        parts = [array.flatten()]
        items = len(parts[0])
    elif pa.types.is_struct(kind):
        parts = array.flatten()
        items = len(array) * kind.num_fields
    else:
        return 0, 0
    chars = 0
    for part in parts:
        inner_items, inner_chars = _arrow_size(part)
        items, chars = items + inner_items, chars + inner_chars
    return items, chars


_ARROW_LISTS = ("is_list", "is_large_list", "is_fixed_size_list")


def _arrow_lengths(array: pa.Array) -> pa.Array | None:
    """Per-value lengths of a text (characters) or binary (bytes) array; None for others."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return pc.utf8_length(array)
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return pc.binary_length(array)
    return None


def _arrow_sum(lengths: pa.Array) -> int:
    import pyarrow.compute as pc

    total = pc.sum(lengths).as_py()
    return int(total or 0)


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


_PARSERS: dict[str, Callable[[bytes, _Budget], tuple[list[str], list[dict[str, Any]]]]] = {
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
        shown=dataset.shown,
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
    path: str | Path,
    name: str | None = None,
    *,
    policy: HostingPolicy,
    max_bytes: int | None = None,
) -> Dataset:
    """Self-Instruct seed tasks (JSONL with instruction + instances) as instruction/input/output.

    One row per instance, alpaca style; a missing or null input becomes "". The hash is that of
    the flattened rows (as for in-memory data), not of the file: the same file loaded as plain
    JSONL has different rows, and a store keyed by content hash must tell the two apart. The
    path and the sizes are checked as by load_dataset.
    """
    resolved = policy.check_data_path(path)
    file = Path(path)
    source = policy.shown_path(path)
    data = _read_bytes(resolved, source, _byte_limit(policy, max_bytes))
    budget = _Budget(policy.limits)
    columns = ["instruction", "input", "output"]
    try:
        tasks = _jsonl_objects(_decode(data), budget)
        rows = [row for line, task in tasks for row in _self_instruct_rows(line, task)]
        budget.check_table(len(rows), len(columns))
    except _Bad as bad:
        raise DatasetError(source, bad.problem, bad.fix, bad.line) from None
    if not rows:
        raise DatasetError(source, "is empty: it has no tasks", "add tasks to the file")
    return Dataset(
        name=name or file.stem,
        path=str(file),
        format="jsonl",
        columns=columns,
        rows=rows,
        content_hash=_rows_hash(columns, rows),
        shown=source,
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
