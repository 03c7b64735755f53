"""Experiment bundles: runs with everything they refer to, in one zip, between studios.

A bundle holds manifest.json (format name and version, studio version, the runs) and one file
per kind of row: datasets.json, template_versions.json, comparison_runs.json,
comparison_results.jsonl, tuning_runs.json, metric_points.jsonl, adapters.json. Ids are the
exporting store's; import remaps them (studio.store.experiments_import) in one transaction.
A bundle that is not ours, from a newer format, or malformed anywhere is refused before anything
is written, with the file and row named.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import MISSING, asdict, fields, is_dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from studio import __version__
from studio.experiments.export import write_atomic
from studio.experiments.refs import RunRef
from studio.store import (
    AdapterRecord,
    ComparisonConfig,
    ComparisonResult,
    ComparisonRun,
    DatasetRecord,
    ExperimentBundle,
    ImportReport,
    MetricPoint,
    RunAnnotations,
    Store,
    TemplateVersion,
    TuningRun,
)

FORMAT = "instruct-studio-experiments"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
FILES = (
    "datasets.json",
    "template_versions.json",
    "comparison_runs.json",
    "comparison_results.jsonl",
    "tuning_runs.json",
    "metric_points.jsonl",
    "adapters.json",
)
MAX_BUNDLE_BYTES = 2 * 1024**3
T = TypeVar("T")


class BundleError(ValueError):
    """A bundle that cannot be imported; the message names the file, the row and the fix."""


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


def import_bundle(store: Store, path: str | Path) -> ImportReport:
    """Read, check and import a bundle in one transaction; BundleError writes nothing."""
    return store.import_experiments(read_bundle(path))


def read_bundle(path: str | Path) -> ExperimentBundle:
    """Parse and check a bundle file into records (nothing is written)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such file; give the .zip that `runs bundle export` wrote")
    if path.stat().st_size > MAX_BUNDLE_BYTES:
        raise BundleError(f"{path}: larger than {MAX_BUNDLE_BYTES >> 30} GiB; split the export")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            manifest = _manifest(archive, names, path)
            raw = {name: _load(archive, name) for name in FILES if name in names}
    except zipfile.BadZipFile:
        raise BundleError(f"{path.name}: not a zip file; an experiment bundle is a .zip") from None
    missing = [name for name in FILES if name not in raw]
    if missing:
        raise BundleError(f"{path.name}: missing {', '.join(missing)}; re-export the bundle")
    del manifest
    return _records(raw)


def _manifest(archive: zipfile.ZipFile, names: set[str], path: Path) -> dict[str, Any]:
    if MANIFEST not in names:
        raise BundleError(
            f"{path.name}: no {MANIFEST}; this is not an Instruct Studio experiment bundle"
        )
    manifest = _load(archive, MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(
            f"{path.name}: {MANIFEST} does not name the format {FORMAT!r}; this is not an "
            "Instruct Studio experiment bundle"
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        newer = isinstance(version, int) and version > FORMAT_VERSION
        fix = "upgrade Instruct Studio to import it" if newer else "re-export it"
        raise BundleError(
            f"{path.name}: bundle format version {version!r}, but this studio reads version "
            f"{FORMAT_VERSION}; {fix}"
        )
    return manifest


def _load(archive: zipfile.ZipFile, name: str) -> Any:
    text = archive.read(name).decode("utf-8", errors="strict")
    try:
        if name.endswith(".jsonl"):
            return [json.loads(line) for line in text.splitlines() if line.strip()]
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BundleError(f"{name}: not valid JSON (line {exc.lineno}: {exc.msg})") from None


def _records(raw: dict[str, Any]) -> ExperimentBundle:
    for name in FILES:
        if not isinstance(raw[name], list) or not all(isinstance(r, dict) for r in raw[name]):
            raise BundleError(f"{name}: must be a list of objects")
    datasets = _many(DatasetRecord, raw["datasets.json"], "datasets.json")
    versions = _many(TemplateVersion, raw["template_versions.json"], "template_versions.json")
    by_dataset = {d.id: d for d in datasets}
    by_version = {v.id: v for v in versions}
    runs, annotations = [], {}
    for i, row in enumerate(raw["comparison_runs.json"], 1):
        where = f"comparison_runs.json: run {i}"
        run = _comparison(row, by_dataset, by_version, where)
        runs.append(run)
        annotations[("comparison", run.id)] = _annotations(row, where)
    tunings = _many(TuningRun, raw["tuning_runs.json"], "tuning_runs.json")
    for tuning, row in zip(tunings, raw["tuning_runs.json"], strict=True):
        annotations[("tuning", tuning.id)] = _annotations(row, f"tuning run {tuning.id}")
    points: dict[int, list[MetricPoint]] = {}
    for i, row in enumerate(raw["metric_points.jsonl"], 1):
        run_id = row.get("tuning_run_id")
        if run_id not in {t.id for t in tunings}:
            raise BundleError(
                f"metric_points.jsonl: row {i} names tuning run {run_id!r}, not in the bundle"
            )
        point = _build(MetricPoint, {k: v for k, v in row.items() if k != "tuning_run_id"},
                       f"metric_points.jsonl: row {i}")  # fmt: skip
        points.setdefault(run_id, []).append(point)
    return ExperimentBundle(
        datasets=datasets,
        template_versions=versions,
        comparison_runs=runs,
        comparison_results=_many(
            ComparisonResult, raw["comparison_results.jsonl"], "comparison_results.jsonl"
        ),
        tuning_runs=tunings,
        metric_points=points,
        adapters=_many(AdapterRecord, raw["adapters.json"], "adapters.json"),
        annotations=annotations,
    )


def _comparison(
    row: dict[str, Any],
    datasets: dict[int, DatasetRecord],
    versions: dict[int, TemplateVersion],
    where: str,
) -> ComparisonRun:
    values = dict(row)
    for key in ("dataset_id", "shot_pool_id"):
        wanted = values.pop(key, None)
        if wanted is not None and wanted not in datasets:
            raise BundleError(f"{where}: {key} {wanted!r} is not in datasets.json")
        values[key.removesuffix("_id")] = datasets.get(wanted) if wanted is not None else None
    if values["dataset"] is None:
        raise BundleError(f"{where}: dataset_id is missing")
    configs = values.pop("configs", None)
    if not isinstance(configs, list) or not configs:
        raise BundleError(f"{where}: configs must be a non-empty list")
    built = []
    for j, config in enumerate(configs, 1):
        if not isinstance(config, dict) or config.get("template_version_id") not in versions:
            raise BundleError(f"{where}, config {j}: template_version_id is not in the bundle")
        version = versions[config["template_version_id"]]
        built.append(_build(ComparisonConfig, {**config, "template_name": version.template_name,
                                               "template_version": version.version},
                            f"{where}, config {j}"))  # fmt: skip
    values["configs"] = built
    for key in ("display_name", "note", "tags"):
        values.pop(key, None)
    values.setdefault("results_done", 0)
    return _build(ComparisonRun, values, where)


def _annotations(row: dict[str, Any], where: str) -> RunAnnotations:
    tags = row.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise BundleError(f"{where}: tags must be a list of strings")
    name, note = row.get("display_name"), row.get("note")
    if not all(v is None or isinstance(v, str) for v in (name, note)):
        raise BundleError(f"{where}: display_name and note must be strings or null")
    return RunAnnotations(name, note, tuple(tags))


def _many(cls: type[T], rows: list[dict[str, Any]], name: str) -> list[T]:
    return [_build(cls, row, f"{name}: row {i}") for i, row in enumerate(rows, 1)]


def _build(cls: type[T], row: dict[str, Any], where: str) -> T:
    """A record from a JSON object: known fields only, required ones present, dates parsed."""
    assert is_dataclass(cls)
    known = {f.name: f for f in fields(cls)}
    required = [
        n for n, f in known.items() if f.default is MISSING and f.default_factory is MISSING
    ]
    absent = [name for name in required if name not in row]
    if absent:
        raise BundleError(f"{where}: missing {', '.join(absent)}")
    values = {k: v for k, v in row.items() if k in known}
    for key in ("created_at", "finished_at", "started_at"):
        if isinstance(values.get(key), str):
            values[key] = _moment(values[key], f"{where}: {key}")
        elif key in values and values[key] is not None:
            raise BundleError(f"{where}: {key} must be an ISO date-time string")
    if "id" in known and not isinstance(values.get("id", 0), (int, type(None))):
        raise BundleError(f"{where}: id must be an integer")
    return cls(**values)


def _moment(text: str, where: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BundleError(f"{where}: {text!r} is not an ISO date-time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


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
