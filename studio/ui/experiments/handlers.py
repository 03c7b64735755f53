"""Experiments tab handlers: parse what the browser sends, call studio.experiments (through
services.experiments for every change), format via views.

Each handler returns plain values for its outputs; problems a user can fix come back as a
"⚠ ..." notice (gr.Warning is not needed: the notice sits next to the button pressed).
"""

from __future__ import annotations

import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from studio.compare.engine import Event, RowDone, RowJudged, RunFinished, RunStarted
from studio.compare.summary import judge_summaries, sampling_summaries
from studio.experiments.actions import describe_delete
from studio.experiments.bundle import export_bundle
from studio.experiments.catalog import list_entries
from studio.experiments.detail import RunDetail, open_run
from studio.experiments.diff import RunComparison, compare_runs, loss_curves
from studio.experiments.export import export_runs
from studio.experiments.refs import RunRef, parse_ref
from studio.services import Services
from studio.store import Store, StoreError
from studio.ui.common.errors import notice
from studio.ui.common.live import LiveRun, follow
from studio.ui.experiments.form import list_filters, selected_refs
from studio.ui.experiments.views import (
    EMPTY_CURVES,
    NOTHING_OPEN,
    JudgedRun,
    agreement_frame,
    agreement_markdown,
    choice_label,
    config_yaml,
    curves_frame,
    detail_markdown,
    diff_frame,
    examples_frame,
    judged_markdown,
    judging_progress,
    list_frame,
    list_note,
    metrics_frame,
    rerun_ended,
    rerun_progress,
    summary_frame,
    templates_text,
)

USER_ERRORS = (ValueError, StoreError, OSError)


class ExperimentsHandlers:
    """One per app; every method is a Gradio handler (values in, values out)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.exports = Path(tempfile.mkdtemp(prefix="studio-exports-"))

    @property
    def store(self) -> Store:
        return self.services.store

    # --- the list -----------------------------------------------------------------------------

    def refresh(self, *filters: Any) -> tuple[pd.DataFrame, str, list[str]]:
        """The list for the filter values; also the choices of the selection box."""
        try:
            chosen = list_filters(filters)
        except ValueError as exc:
            return list_frame([]), notice(exc), []
        entries = list_entries(self.store, chosen)
        return list_frame(entries), list_note(entries), [choice_label(e) for e in entries]

    def refresh_all(self, *filters: Any) -> tuple[Any, ...]:
        """(list, note, selection box) for the filter values."""
        frame, text, choices = self.refresh(*filters)
        return frame, text, gr.Dropdown(choices=choices)

    def clicked(self, chosen: list[str] | None, evt: gr.SelectData) -> tuple[Any, Any]:
        """Open the clicked run and add it to the selection."""
        row = evt.row_value or []
        if not row:
            return gr.skip(), gr.skip()
        label = f"{row[0]} · {row[2]}"
        chosen = list(chosen or [])
        return row[0], gr.Dropdown(value=chosen if label in chosen else [*chosen, label])

    # --- one run ------------------------------------------------------------------------------

    def open(self, ref_text: str | None) -> tuple[Any, ...]:
        """Values for the detail view of `ref_text` ("c3"); an empty view when None."""
        if not ref_text:
            return (None, NOTHING_OPEN, pd.DataFrame(), pd.DataFrame(), "", "", EMPTY_CURVES, "")
        detail = open_run(self.store, parse_ref(ref_text))
        return (
            str(detail.ref),
            detail_markdown(detail, self.judged(detail.ref)),
            summary_frame(detail),
            examples_frame(detail),
            config_yaml(detail.config),
            templates_text(detail),
            _own_curves(detail),
            detail.log,
        )

    def judged(self, ref: RunRef) -> JudgedRun | None:
        """A comparison's judge lineage, settings and judge/sampling summaries (None for other
        runs)."""
        run = self.store.get_comparison_run(ref.id) if ref.kind == "comparison" else None
        if run is None:
            return None
        judges, sampling = (
            judge_summaries(self.store, run.id),
            sampling_summaries(self.store, run.id),
        )
        return JudgedRun(str(ref), run.judge, run.config, judges, sampling)

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
            return notice(exc)

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

    def ask(self, ref_text: str | None) -> tuple[str, Any]:
        """(notice, confirm row): the question, with Confirm / Cancel shown when it is asked."""
        question, show = self.ask_delete(ref_text)
        return question, gr.Row(visible=show)

    def delete(self, ref_text: str | None) -> str:
        if not ref_text:
            return f"⚠ {NOTHING_OPEN}"
        try:
            return describe_delete(self.services.experiments.delete(parse_ref(ref_text)))
        except USER_ERRORS as exc:
            return notice(exc)

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
            yield from follow_rerun(events, ref)
        except USER_ERRORS as exc:
            yield notice(exc)

    # --- several runs -------------------------------------------------------------------------

    def compare(self, selection: list[str] | None, differences_only: bool) -> tuple[Any, ...]:
        try:
            result = compare_runs(self.store, selected_refs(selection))
        except ValueError as exc:
            empty = pd.DataFrame()
            return notice(exc), empty, empty, EMPTY_CURVES, EMPTY_CURVES, "", empty, "", None
        judged = [self.judged(detail.ref) for detail in result.details]
        return (
            f"Comparing {', '.join(m['run'] for m in result.metrics)}.",
            metrics_frame(result),
            diff_frame(result, differences_only),
            curves_frame(result.curves, "loss"),
            curves_frame(result.curves, "eval_loss"),
            agreement_markdown(result),
            agreement_frame(result.agreement),
            judged_markdown([j for j in judged if j is not None]),
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
            return notice(exc), None
        return f"Exported {rows} rows of {len(refs)} run(s) as {fmt.upper()}.", str(path)

    def export_bundle(self, selection: list[str] | None) -> tuple[str, str | None]:
        refs = selected_refs(selection)
        try:
            path = self.exports / f"experiments-{'-'.join(map(str, refs[:4]))}.zip"
            counts = export_bundle(self.store, refs, path)
        except USER_ERRORS as exc:
            return notice(exc), None
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
    return curves_frame(loss_curves([detail]), "loss")


def follow_rerun(events: Iterable[Event], ref: RunRef) -> Iterator[str]:
    """The re-run's progress as one line, updated at the pace of the Compare tab."""
    live = LiveRun(n_cells=0)
    for event in follow(events, live):
        if isinstance(event, (RunStarted, RowDone)):
            yield rerun_progress(ref, live.run_id, live.done, live.total)
        elif isinstance(event, RowJudged):
            yield judging_progress(ref, live.run_id, event.done, event.total)
        elif isinstance(event, RunFinished):
            yield rerun_ended(ref, event.run_id, event.status, event.error)
