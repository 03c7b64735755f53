"""What the Experiments tab and `studio runs` do to runs: tag, rename, note, delete, re-run,
import a bundle — every action under this studio's hosting policy.

Re-running builds the same settings and hands them to the existing engines: a comparison run's
stored CompareConfig goes to ComparisonRunner.run (new run, new id); a tuning run's stored
TuneConfig is checked and queued like any launch, under a new adapter name (`<name>-rerun<N>`,
the first free one) because a run never overwrites another run's adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from studio.compare.config import build_config
from studio.compare.engine import ComparisonRunner
from studio.experiments.bundle_import import ImportReport, import_bundle
from studio.experiments.refs import RunRef
from studio.models.adapters import adapter_path
from studio.store import DeleteReport, TuningRun
from studio.tuning.config import build_tune_config
from studio.tuning.queue import TuningQueue

RERUN_SUFFIX = "-rerun"


def _run_kind(ref: RunRef, action: str) -> str:
    if ref.kind == "adapter":
        raise ValueError(f"{ref} is an adapter; only comparison and tuning runs can be {action}")
    return ref.kind


class RunActions:
    """Changes to stored runs, through the engines that made them."""

    def __init__(self, comparisons: ComparisonRunner, tuning: TuningQueue) -> None:
        self.comparisons = comparisons
        self.tuning = tuning
        self.store = tuning.store
        self.policy = tuning.policy

    def tag(self, ref: RunRef, tags: str) -> list[str]:
        """Add comma-separated `tags`; returns those that were new."""
        self.policy.check_shared_write("tagging runs")
        kind = _run_kind(ref, "tagged")
        wanted = [t for t in (part.strip() for part in tags.split(",")) if t]
        if not wanted:
            raise ValueError("type a tag (several: separate them with commas)")
        return [t for t in wanted if self.store.tag_run(kind, ref.id, t)]

    def untag(self, ref: RunRef, tag_name: str) -> bool:
        self.policy.check_shared_write("removing tags from runs")
        return self.store.untag_run(_run_kind(ref, "untagged"), ref.id, tag_name)

    def rename(self, ref: RunRef, name: str | None) -> None:
        self.policy.check_shared_write("renaming runs")
        self.store.rename_run(_run_kind(ref, "renamed"), ref.id, name)

    def annotate(self, ref: RunRef, note: str | None) -> None:
        self.policy.check_shared_write("writing notes on runs")
        self.store.annotate_run(_run_kind(ref, "annotated"), ref.id, note)

    def delete(self, ref: RunRef) -> DeleteReport:
        self.policy.check_shared_write("deleting runs")
        if ref.kind == "comparison":
            return self.store.delete_comparison_run(ref.id)
        if ref.kind == "tuning":
            return self.store.delete_tuning_run(ref.id)
        return self.store.delete_adapter_record(ref.id)

    def rerun_comparison(self, ref: RunRef, stop: threading.Event | None = None) -> Iterator[Any]:
        """The engine's event stream of a new run with `ref`'s settings (ComparisonRunner.run)."""
        run = self.store.get_comparison_run(ref.id) if ref.kind == "comparison" else None
        if run is None:
            raise ValueError(f"no comparison run {ref} to re-run")
        return self.comparisons.run(build_config(**run.config), stop)

    def rerun_tuning(self, ref: RunRef) -> TuningRun:
        """Queue a new run with `ref`'s TuneConfig under a fresh adapter name; starts it if idle."""
        run = self.store.get_tuning_run(ref.id) if ref.kind == "tuning" else None
        if run is None:
            raise ValueError(f"no tuning run {ref} to re-run")
        config = build_tune_config(run.config)
        config = config.model_copy(update={"name": self.free_name(config.name)})
        queued, _ = self.tuning.launch(self.tuning.check(config))
        return self.store.get_tuning_run(queued.id) or queued

    def free_name(self, name: str) -> str:
        """`<name>-rerun<N>` with the smallest N whose adapter folder and runs are free."""
        base = name.split(RERUN_SUFFIX)[0] if RERUN_SUFFIX in name else name
        taken = {r.name for r in self.store.list_tuning_runs(limit=10_000)}
        adapters_dir = self.tuning.settings.adapters_dir
        for n in range(2, 10_000):
            candidate = f"{base[: 64 - len(RERUN_SUFFIX) - 4]}{RERUN_SUFFIX}{n}"
            if candidate not in taken and not adapter_path(adapters_dir, candidate).exists():
                return candidate
        raise ValueError(f"no free adapter name for a re-run of {name}")

    def import_bundle(self, path: str | Path) -> ImportReport:
        """Add a bundle's runs to this studio's store (see experiments.bundle_import)."""
        return import_bundle(self.store, path, self.policy, self.tuning.settings)


def describe_delete(report: DeleteReport) -> str:
    """One paragraph: what went, what stayed and why."""
    prefix = {"comparison": "c", "tuning": "t", "adapter": "a"}[report.kind]
    removed = ", ".join(f"{n} {what}" for what, n in report.removed.items() if n)
    text = f"Deleted {report.kind} {prefix}{report.run_id}" + (f" ({removed})." if removed else ".")
    if report.kept:
        text += " Kept: " + "; ".join(report.kept) + "."
    return text
