"""Data tab handlers: build pairs from a run, review them, save them as a dataset version."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import gradio as gr
from pydantic import ValidationError

from studio.data.pairs import Review, build_pairs, pairs_dataset
from studio.data.synthetic import Finished, Judged, Started, SyntheticData
from studio.data.synthetic_review import save_reviewed
from studio.data.synthetic_work import GenerationSettings, work_folder
from studio.experiments.refs import parse_ref
from studio.hosting import PolicyRefusal
from studio.services import Services
from studio.templates.preview import resolve_data_path
from studio.ui.common.errors import user_error
from studio.ui.common.stops import StopRegistry
from studio.ui.data.views import (
    built_note,
    candidate_edits,
    candidate_rows,
    generation_status,
    pair_rows,
    review_of,
    rule_choices,
    run_choices,
    saved_note,
    version_rows,
)


class DataHandlers:
    """One per app."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.synthetic = SyntheticData(
            services.comparisons.backends, services.settings.home / "datasets"
        )
        self.stops = StopRegistry()

    def runs(self) -> Any:
        """The run picker's choices: generation runs, newest first."""
        runs = self.services.store.list_comparison_runs()
        return gr.update(choices=run_choices(runs))

    def rules(self, run: str | None) -> Any:
        """The rules the chosen run supports (its metric; 'judge' if judged)."""
        record = self._run(run) if run else None
        choices = rule_choices(record)
        return gr.update(choices=choices, value=choices[-1] if choices else None)

    def build(self, run: str | None, rule: str | None, margin: float | None) -> tuple[Any, str]:
        """Build pairs from `run` by `rule` for review."""
        if not run or not rule:
            raise gr.Error("Pick a generation run and a rule first.")
        try:
            pairs = build_pairs(self.services.store, parse_ref(run).id, rule, float(margin or 0))
        except ValueError as exc:
            raise user_error(exc) from None
        return pair_rows(pairs), built_note(len(pairs), run, rule)

    def save(
        self,
        run: str | None,
        rule: str | None,
        margin: float | None,
        review: Any,
        name: str | None,
    ) -> tuple[str, list[list[Any]]]:
        """Save the reviewed pairs as the next version of dataset `name`."""
        if not run or not rule:
            raise gr.Error("Build pairs from a run first.")
        rows = review.values.tolist() if hasattr(review, "values") else list(review or [])
        drop, swap = review_of(rows)
        s = self.services
        try:
            version = pairs_dataset(
                s.store, s.policy, s.settings.home / "datasets", parse_ref(run).id, rule,
                (name or "").strip(), float(margin or 0), Review(drop, swap),
            )  # fmt: skip
        except (ValueError, PolicyRefusal) as exc:
            raise user_error(exc) from None
        return saved_note(version), self.versions()

    def versions(self) -> list[list[Any]]:
        return version_rows(self.services.store.dataset_versions())

    def _run(self, run: str) -> Any:
        return self.services.store.get_comparison_run(parse_ref(run).id)

    # -- synthetic instruction data ------------------------------------------------------------

    def generate(
        self,
        seeds: str | None,
        model: str | None,
        count: float | None,
        max_new: float | None,
        name: str | None,
        request: gr.Request,
    ) -> Iterator[tuple[str, Any]]:
        """Generate (or continue) job `name` to `count` accepted candidates, streaming progress;
        the candidates come back for review when it ends."""
        name = (name or "").strip()
        try:
            settings = GenerationSettings(
                seed_tasks=str(resolve_data_path(seeds)), generator=model or "",
                count=int(count or 0), output=name, max_new_tokens=int(max_new or 96),
            )  # fmt: skip
        except (ValidationError, ValueError) as exc:
            raise user_error(ValueError(_first_problem(exc))) from None
        with self.stops.running(request.session_hash) as stop:
            try:
                if self._has_job(name):
                    events = self.synthetic.resume(name, settings.count, stop)
                else:
                    events = self.synthetic.generate(settings, stop)
                yield from self._follow(events, name)
            except (ValueError, PolicyRefusal) as exc:
                raise user_error(exc) from None

    def _follow(self, events: Iterator[Any], name: str) -> Iterator[tuple[str, Any]]:
        target = candidates = accepted = 0
        for event in events:
            if isinstance(event, Started):
                target, accepted = event.settings.count, event.accepted
                candidates = event.candidates
                yield (
                    generation_status(accepted, target, candidates, "loading the generator…"),
                    gr.skip(),
                )
            elif isinstance(event, Judged):
                accepted, candidates = event.accepted, candidates + 1
                yield generation_status(accepted, target, candidates), gr.skip()
            elif isinstance(event, Finished):
                note = {"reached": "done: review, then save", "stopped": "stopped: Generate "
                        "again continues", "exhausted": "no new candidate passed the filters "
                        "for several rounds"}[event.reason]  # fmt: skip
                state = self.synthetic.state(name)
                yield (
                    generation_status(event.accepted, event.target, event.candidates, note),
                    candidate_rows(state.candidates),
                )

    def stop_generation(self, request: gr.Request) -> None:
        self.stops.stop(request.session_hash)

    def candidates(self, name: str | None) -> tuple[str, Any]:
        """A job's candidates for review (what generation kept so far)."""
        name = (name or "").strip()
        if not self._has_job(name):
            raise gr.Error(f"No generation named {name!r} is under way. Generate first.")
        state = self.synthetic.state(name)
        return (
            generation_status(len(state.accepted), state.settings.count, len(state.candidates)),
            candidate_rows(state.candidates),
        )

    def save_generated(self, name: str | None, review: Any) -> tuple[str, list[list[Any]]]:
        """Save job `name`'s kept candidates, with the table's edits, as a dataset version."""
        name = (name or "").strip()
        if not self._has_job(name):
            raise gr.Error(f"No generation named {name!r} to save. Generate first.")
        rows = review.values.tolist() if hasattr(review, "values") else list(review or [])
        s = self.services
        try:
            edits = candidate_edits(rows, self.synthetic.state(name).candidates)
            version = save_reviewed(s.store, s.policy, s.settings.home / "datasets", name, edits)
        except (ValueError, PolicyRefusal) as exc:
            raise user_error(exc) from None
        note = (
            f"Saved **{version.ref}**: {version.dataset.n_rows} instructions → "
            f"`{version.dataset.path}` (instruction/input/output: use it in Tune or Compare)."
        )
        return note, self.versions()

    def _has_job(self, name: str) -> bool:
        return bool(name) and work_folder(self.synthetic.datasets_dir, name).is_dir()


def _first_problem(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        return f"{where}: {err['msg']}".replace("Value error, ", "")
    return str(exc)
