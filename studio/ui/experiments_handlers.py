"""Experiments tab handlers: parse what the browser sends, call studio.experiments, format.

Each handler returns plain values for its outputs; problems a user can fix come back as a
"⚠ ..." notice (gr.Warning is not needed: the notice sits next to the button pressed).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd

from studio.compare.engine import RowDone, RunFinished, RunStarted
from studio.experiments.actions import describe_delete
from studio.experiments.bundle import export_bundle
from studio.experiments.catalog import Filters, list_entries
from studio.experiments.detail import RunDetail, open_run
from studio.experiments.diff import RunComparison, compare_runs
from studio.experiments.export import export_runs
from studio.experiments.refs import RunRef, parse_ref, parse_refs
from studio.services import Services
from studio.store import StoreError
from studio.ui.experiments_views import (
    EMPTY_CURVES,
    agreement_frame,
    agreement_markdown,
    choice_label,
    config_yaml,
    curves_frame,
    detail_markdown,
    diff_frame,
    examples_frame,
    list_frame,
    list_note,
    metrics_frame,
    summary_frame,
    templates_text,
)

USER_ERRORS = (ValueError, StoreError, OSError)
NOTHING_OPEN = "Select a run in the list to open it."


def parse_day(text: str | None, field: str) -> date | None:
    if not text or not text.strip():
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{field}: '{text}' is not a date; use YYYY-MM-DD") from None


def selected_refs(selection: list[str] | None) -> list[RunRef]:
    """Refs from the selection box's values ("c3 · name")."""
    return parse_refs([value.split(" · ")[0] for value in selection or []])


class ExperimentsHandlers:
    """One per app; every method is a Gradio handler (values in, values out)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.exports = Path(tempfile.mkdtemp(prefix="studio-exports-"))

    @property
    def store(self) -> Any:
        return self.services.store

    def refresh(self, *filters: Any) -> tuple[pd.DataFrame, str, list[str]]:
        """The list for the filter values; also the choices of the selection box."""
        kind, status, tag, search, model, template, dataset, since, until = filters
        try:
            chosen = Filters(
                kind=kind or None, status=(status or "").strip() or None, tag=tag, search=search,
                model=model, template=template, dataset=dataset,
                since=parse_day(since, "From"), until=parse_day(until, "To"),
            )  # fmt: skip
        except ValueError as exc:
            return list_frame([]), f"⚠ {exc}", []
        entries = list_entries(self.store, chosen)
        return list_frame(entries), list_note(entries), [choice_label(e) for e in entries]

    def open(self, ref_text: str | None) -> tuple[Any, ...]:
        """Values for the detail view of `ref_text` ("c3"); an empty view when None."""
        if not ref_text:
            return (None, NOTHING_OPEN, pd.DataFrame(), pd.DataFrame(), "", "", EMPTY_CURVES, "")
        detail = open_run(self.store, parse_ref(ref_text))
        return (
            str(detail.ref),
            detail_markdown(detail),
            summary_frame(detail),
            examples_frame(detail),
            config_yaml(detail.config),
            templates_text(detail),
            _own_curves(detail),
            detail.log,
        )

    def annotate(self, ref_text: str | None, action: str, text: str) -> str:
        """Tag, untag, rename or note the open run; the notice says what happened."""
        if not ref_text:
            return f"⚠ {NOTHING_OPEN}"
        ref = parse_ref(ref_text)
        try:
            if action == "tag":
                added = self.services.experiments.tag(ref, text or "")
                return f"Tagged {ref}: {', '.join(added)}." if added else f"{ref} had those tags."
            if action == "untag":
                gone = self.services.experiments.untag(ref, text or "")
                return (
                    f"Removed tag {text!r} from {ref}." if gone else f"{ref} had no tag {text!r}."
                )
            if action == "rename":
                self.services.experiments.rename(ref, text)
                return f"Renamed {ref}." if (text or "").strip() else f"Name of {ref} cleared."
            self.services.experiments.annotate(ref, text)
            return f"Note of {ref} saved."
        except USER_ERRORS as exc:
            return f"⚠ {exc}"

    def ask_delete(self, ref_text: str | None) -> tuple[str, bool]:
        """The confirmation question, and whether to show the Confirm/Cancel row."""
        if not ref_text:
            return f"⚠ {NOTHING_OPEN}", False
        detail = open_run(self.store, parse_ref(ref_text))
        return (
            f"Delete **{detail.ref} · {detail.entry.name}** ({detail.entry.progress})? Its own "
            "rows go; template versions, datasets and adapters other runs use are kept. This "
            "cannot be undone.",
            True,
        )

    def delete(self, ref_text: str | None) -> str:
        if not ref_text:
            return f"⚠ {NOTHING_OPEN}"
        try:
            return describe_delete(self.services.experiments.delete(parse_ref(ref_text)))
        except USER_ERRORS as exc:
            return f"⚠ {exc}"

    def rerun(self, ref_text: str | None) -> Iterator[str]:
        """Start the same settings again: a comparison streams here, a tuning run is queued."""
        if not ref_text:
            yield f"⚠ {NOTHING_OPEN}"
            return
        ref = parse_ref(ref_text)
        try:
            if ref.kind == "tuning":
                run = self.services.experiments.rerun_tuning(ref)
                yield f"Queued t{run.id} ({run.name}) with the settings of {ref}; see the Tune tab."
                return
            yield f"Preparing a re-run of {ref}…"
            events = self.services.experiments.rerun_comparison(ref, threading.Event())
            yield from _follow(events, ref)
        except USER_ERRORS as exc:
            yield f"⚠ {exc}"

    def compare(self, selection: list[str] | None, differences_only: bool) -> tuple[Any, ...]:
        try:
            result = compare_runs(self.store, selected_refs(selection))
        except ValueError as exc:
            empty = pd.DataFrame()
            return f"⚠ {exc}", empty, empty, EMPTY_CURVES, EMPTY_CURVES, "", empty, None
        return (
            f"Comparing {', '.join(m['run'] for m in result.metrics)}.",
            metrics_frame(result),
            diff_frame(result, differences_only),
            curves_frame(result.curves, "loss"),
            curves_frame(result.curves, "eval_loss"),
            agreement_markdown(result),
            agreement_frame(result.agreement),
            result,
        )

    def rediff(self, result: RunComparison | None, differences_only: bool) -> pd.DataFrame:
        return diff_frame(result, differences_only) if result else pd.DataFrame()

    def export(self, selection: list[str] | None, fmt: str) -> tuple[str, str | None]:
        refs = selected_refs(selection)
        try:
            path = self.exports / f"runs-{'-'.join(map(str, refs[:4]))}.{fmt}"
            rows = export_runs(self.store, refs, fmt, path)
        except USER_ERRORS as exc:
            return f"⚠ {exc}", None
        return f"Exported {rows} rows of {len(refs)} run(s) as {fmt.upper()}.", str(path)

    def export_bundle(self, selection: list[str] | None) -> tuple[str, str | None]:
        refs = selected_refs(selection)
        try:
            path = self.exports / f"experiments-{'-'.join(map(str, refs[:4]))}.zip"
            counts = export_bundle(self.store, refs, path)
        except USER_ERRORS as exc:
            return f"⚠ {exc}", None
        rows = sum(counts.values())
        return f"Bundle of {len(refs)} run(s), {rows} rows in all.", str(path)

    def import_bundle(self, upload: Any) -> str:
        if not upload:
            return "⚠ Choose a bundle (.zip) to import first."
        try:
            path = getattr(upload, "name", upload)
            report = self.services.experiments.import_bundle(path)
        except USER_ERRORS as exc:
            return f"⚠ Nothing imported: {exc}"
        runs = [f"c{new}" for new in report.comparison_ids.values()]
        runs += [f"t{new}" for new in report.tuning_ids.values()]
        reused = ", ".join(f"{n} {what}" for what, n in report.reused.items())
        notes = "".join(f"\n- {note}" for note in report.notes)
        return (
            f"Imported {', '.join(runs) or 'no runs'}"
            + (f" (already here: {reused})." if reused else ".")
            + notes
        )


def _own_curves(detail: RunDetail) -> pd.DataFrame:
    from studio.experiments.diff import loss_curves

    return curves_frame(loss_curves([detail]), "loss")


def _follow(events: Iterator[Any], ref: RunRef) -> Iterator[str]:
    new_id, done, total = None, 0, 0
    for event in events:
        if isinstance(event, RunStarted):
            new_id, total = event.run_id, event.total
            yield f"Re-running {ref} as c{new_id}: 0/{total} rows."
        elif isinstance(event, RowDone) and (event.done % 8 == 0 or event.done == event.total):
            done = event.done
            yield f"Re-running {ref} as c{new_id}: {done}/{total} rows."
        elif isinstance(event, RunFinished):
            ending = f": {event.error}" if event.error else "."
            yield f"Re-run of {ref} is c{event.run_id}, {event.status}{ending}"
