"""What the Experiments tab and `studio runs` do to runs: tag, rename, note, delete, re-run.

Re-running builds the same settings and hands them to the existing engines: a comparison run's
stored CompareConfig goes to ComparisonRunner.run (new run, new id); a tuning run's stored
TuneConfig is checked and queued like any launch, under a new adapter name (`<name>-rerun<N>`,
the first free one) because a run never overwrites another run's adapter.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from studio.experiments.refs import RunRef
from studio.hosting import HostingPolicy
from studio.store import DeleteReport, Store, TuningRun

RERUN_SUFFIX = "-rerun"


def _run_kind(ref: RunRef, action: str) -> str:
    if ref.kind == "adapter":
        raise ValueError(f"{ref} is an adapter; only comparison and tuning runs can be {action}")
    return ref.kind


def tag(store: Store, policy: HostingPolicy, ref: RunRef, tags: str) -> list[str]:
    """Add comma-separated `tags`; returns those that were new."""
    policy.check_shared_write("tagging runs")
    kind = _run_kind(ref, "tagged")
    wanted = [t for t in (part.strip() for part in tags.split(",")) if t]
    if not wanted:
        raise ValueError("type a tag (several: separate them with commas)")
    return [t for t in wanted if store.tag_run(kind, ref.id, t)]


def untag(store: Store, policy: HostingPolicy, ref: RunRef, tag_name: str) -> bool:
    policy.check_shared_write("removing tags from runs")
    return store.untag_run(_run_kind(ref, "untagged"), ref.id, tag_name)


def rename(store: Store, policy: HostingPolicy, ref: RunRef, name: str | None) -> None:
    policy.check_shared_write("renaming runs")
    store.rename_run(_run_kind(ref, "renamed"), ref.id, name)


def annotate(store: Store, policy: HostingPolicy, ref: RunRef, note: str | None) -> None:
    policy.check_shared_write("writing notes on runs")
    store.annotate_run(_run_kind(ref, "annotated"), ref.id, note)


def delete(store: Store, policy: HostingPolicy, ref: RunRef) -> DeleteReport:
    policy.check_shared_write("deleting runs")
    if ref.kind == "comparison":
        return store.delete_comparison_run(ref.id)
    if ref.kind == "tuning":
        return store.delete_tuning_run(ref.id)
    return store.delete_adapter_record(ref.id)


def describe_delete(report: DeleteReport) -> str:
    """One paragraph: what went, what stayed and why."""
    prefix = {"comparison": "c", "tuning": "t", "adapter": "a"}[report.kind]
    removed = ", ".join(f"{n} {what}" for what, n in report.removed.items() if n)
    text = f"Deleted {report.kind} {prefix}{report.run_id}" + (f" ({removed})." if removed else ".")
    if report.kept:
        text += " Kept: " + "; ".join(report.kept) + "."
    return text


def rerun_comparison(
    store: Store, runner: Any, ref: RunRef, stop: threading.Event | None = None
) -> Iterator[Any]:
    """The engine's event stream of a new run with `ref`'s settings (see ComparisonRunner.run)."""
    from studio.compare.config import build_config

    run = store.get_comparison_run(ref.id) if ref.kind == "comparison" else None
    if run is None:
        raise ValueError(f"no comparison run {ref} to re-run")
    return runner.run(build_config(**run.config), stop)


def rerun_tuning(settings: Any, store: Store, policy: HostingPolicy, ref: RunRef) -> TuningRun:
    """Queue a new run with `ref`'s TuneConfig under a fresh adapter name; starts it if idle."""
    from studio.tuning.config import build_tune_config
    from studio.tuning.jobs import check_launch, queue_run, start_next

    run = store.get_tuning_run(ref.id) if ref.kind == "tuning" else None
    if run is None:
        raise ValueError(f"no tuning run {ref} to re-run")
    config = build_tune_config(run.config)
    config = config.model_copy(update={"name": free_name(settings, store, config.name)})
    queued = queue_run(check_launch(config, settings, policy), settings, store, policy)
    start_next(settings, store)
    return store.get_tuning_run(queued.id) or queued


def free_name(settings: Any, store: Store, name: str) -> str:
    """`<name>-rerun<N>` with the smallest N whose adapter folder and runs are free."""
    from studio.models.adapters import adapter_path

    base = name.split(RERUN_SUFFIX)[0] if RERUN_SUFFIX in name else name
    taken = {r.name for r in store.list_tuning_runs(limit=10_000)}
    for n in range(2, 10_000):
        candidate = f"{base[: 64 - len(RERUN_SUFFIX) - 4]}{RERUN_SUFFIX}{n}"
        if candidate not in taken and not adapter_path(settings.adapters_dir, candidate).exists():
            return candidate
    raise ValueError(f"no free adapter name for a re-run of {name}")
