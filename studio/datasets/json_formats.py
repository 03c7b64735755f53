"""JSON and JSONL files: objects as rows, their nesting bounded by MAX_JSON_DEPTH."""

from __future__ import annotations

import json
import re
from typing import Any

from studio.datasets.bounds import _Budget
from studio.datasets.errors import _Bad
from studio.datasets.reading import _decode
from studio.datasets.table import _rows_with_union_columns

# Deepest nesting of lists and objects a JSON/JSONL file may have, counted from the outermost
# bracket (a row object in a top-level list is level 2, a list in one of its cells level 3).
MAX_JSON_DEPTH = 64


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
