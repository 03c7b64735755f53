"""Data tab handlers: build pairs from a run, review them, save them as a dataset version."""

from __future__ import annotations

from typing import Any

import gradio as gr

from studio.data.pairs import Review, build_pairs, pairs_dataset
from studio.experiments.refs import parse_ref
from studio.hosting import PolicyRefusal
from studio.services import Services
from studio.ui.common.errors import user_error
from studio.ui.data.views import (
    built_note,
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
