"""The Experiments tab's inputs as typed values: the list's filters as a Filters, the selection
box as run refs. No gradio here; a value that cannot be read raises ValueError naming it."""

from __future__ import annotations

from datetime import date
from typing import Any

from studio.experiments.catalog import Filters
from studio.experiments.refs import RunRef, parse_refs

# The filter inputs of the list, in the order the tab passes them.
FILTER_FIELDS = ("kind", "status", "tag", "search", "model", "template", "dataset", "since",
                 "until")  # fmt: skip


def parse_day(text: str | None, field: str) -> date | None:
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{field}: '{text}' is not a date; use YYYY-MM-DD") from None


def list_filters(values: tuple[Any, ...]) -> Filters:
    """The list's filters from the values of FILTER_FIELDS (same order)."""
    kind, status, tag, search, model, template, dataset, since, until = values
    return Filters(
        kind=kind or None, status=(status or "").strip() or None, tag=tag, search=search,
        model=model, template=template, dataset=dataset,
        since=parse_day(since, "From"), until=parse_day(until, "To"),
    )  # fmt: skip


def selected_refs(selection: list[str] | None) -> list[RunRef]:
    """Refs from the selection box's values ("c3 · name")."""
    return parse_refs([value.split(" · ")[0] for value in selection or []])
