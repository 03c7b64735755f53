"""CSV and TSV files: a header naming the columns, then one row per record, checked per line."""

from __future__ import annotations

import csv
import io
from typing import Any

from studio.datasets.bounds import _Budget
from studio.datasets.errors import _Bad
from studio.datasets.reading import _decode


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
