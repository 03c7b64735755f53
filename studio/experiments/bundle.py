"""Experiment bundles: runs with everything they refer to, in one zip, between studios.

A bundle holds manifest.json (format name and version, studio version, the runs) and one file
per kind of row: datasets.json, template_versions.json, comparison_runs.json,
comparison_results.jsonl, tuning_runs.json, metric_points.jsonl, adapters.json. Ids are the
exporting store's; import remaps them (studio.store.experiments_import) in one transaction.

This module owns export; importing, which trusts nothing in a bundle, is
studio.experiments.bundle_import, whose names are importable from here too.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from studio import __version__
from studio.experiments.bundle_import import (
    FILES,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    BundleError,
    Places,
    import_bundle,
    read_bundle,
)
from studio.experiments.export import write_atomic
from studio.experiments.refs import RunRef
from studio.store import AdapterRecord, ComparisonRun, RunAnnotations, Store, TuningRun

T = TypeVar("T")
__all__ = [
    "FILES",
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "BundleError",
    "Places",
    "export_bundle",
    "import_bundle",
    "read_bundle",
]


def export_bundle(store: Store, refs: list[RunRef], path: str | Path) -> dict[str, int]:
    """Write the runs `refs` (and what they refer to) as a zip; returns rows per file."""
    if not refs:
        raise ValueError("choose at least one run to put in the bundle")
    files = collect(store, refs)
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "studio_version": __version__,
        "created_at": datetime.now(timezone.utc).isoformat(),
        "runs": [str(ref) for ref in refs],
        "counts": {name: len(rows) for name, rows in files.items()},
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(MANIFEST, json.dumps(manifest, indent=2))
        for name, rows in files.items():
            archive.writestr(name, _dump(name, rows))
    write_atomic(Path(path), buffer.getvalue())
    return manifest["counts"]  # type: ignore[return-value]


def collect(store: Store, refs: list[RunRef]) -> dict[str, list[dict[str, Any]]]:
    """The rows of every bundle file for `refs`."""
    comparisons = [_need(store.get_comparison_run(r.id), r) for r in refs if r.kind == "comparison"]
    tunings = [_need(store.get_tuning_run(r.id), r) for r in refs if r.kind == "tuning"]
    tuning_ids = {t.id for t in tunings}
    adapters = [a for a in store.list_adapter_records() if a.tuning_run_id in tuning_ids]
    adapters += [_need(store.adapter_by_id(r.id), r) for r in refs if r.kind == "adapter"]
    adapters = list({a.id: a for a in adapters}.values())
    dataset_ids = {r.dataset.id for r in comparisons}
    dataset_ids |= {r.shot_pool.id for r in comparisons if r.shot_pool}
    lineage: list[TuningRun | AdapterRecord] = [*tunings, *adapters]
    dataset_ids |= {x.dataset_id for x in lineage if x.dataset_id is not None}
    version_ids = {c.template_version_id for r in comparisons for c in r.configs}
    version_ids |= {x.template_version_id for x in lineage if x.template_version_id is not None}
    version_ids |= {r.judge["template_version_id"] for r in comparisons if r.judge}
    notes_c = store.run_annotations("comparison", [r.id for r in comparisons])
    notes_t = store.run_annotations("tuning", list(tuning_ids))
    return {
        "datasets.json": [_plain(store.get_dataset(i)) for i in sorted(dataset_ids)],
        "template_versions.json": [
            _plain(store.get_template_version(i)) for i in sorted(version_ids)
        ],
        "comparison_runs.json": [_run_dict(r, notes_c.get(r.id)) for r in comparisons],
        "comparison_results.jsonl": [
            _plain(result) for r in comparisons for result in store.comparison_results(r.id)
        ],
        "tuning_runs.json": [{**_plain(t), **_notes(notes_t.get(t.id))} for t in tunings],
        "metric_points.jsonl": [
            {"tuning_run_id": t.id, **_plain(p)} for t in tunings for p in store.metric_points(t.id)
        ],
        "adapters.json": [
            {
                **_plain(a),
                "tuning_run_id": a.tuning_run_id if a.tuning_run_id in tuning_ids else None,
            }
            for a in adapters
        ],
    }


def _need(found: T | None, ref: RunRef) -> T:
    if found is None:
        raise ValueError(f"no {ref.kind} {ref}; `studio runs list` shows the ids")
    return found


def _plain(record: Any) -> dict[str, Any]:
    if record is None:
        raise ValueError("a run refers to a record the store no longer has")
    return asdict(record)


def _notes(notes: RunAnnotations | None) -> dict[str, Any]:
    notes = notes or RunAnnotations()
    return {"display_name": notes.display_name, "note": notes.note, "tags": list(notes.tags)}


def _run_dict(run: ComparisonRun, notes: RunAnnotations | None) -> dict[str, Any]:
    values = _plain(run)
    values["dataset_id"] = values.pop("dataset")["id"]
    pool = values.pop("shot_pool")
    values["shot_pool_id"] = pool["id"] if pool else None
    for config in values["configs"]:
        del config["template_name"], config["template_version"]
    return {**values, **_notes(notes)}


def _dump(name: str, rows: list[dict[str, Any]]) -> str:
    if name.endswith(".jsonl"):
        return "".join(json.dumps(row, default=_default) + "\n" for row in rows)
    return json.dumps(rows, indent=1, default=_default)


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} to a bundle")
