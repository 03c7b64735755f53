"""Importing an experiment bundle: check it whole, neutralise it, then one store transaction.

A bundle comes from someone else, so importing one trusts nothing in it: the hosting policy
decides first (a public demo imports nothing) and bounds its size (studio.experiments.
bundle_archive); every row must fit the typed schema (studio.experiments.bundle_schema), or the
whole bundle is refused with the file, row and field named, before anything is written. What
would reach outside the records is neutralised: an imported tuning run's folders are this
studio's (the bundle's paths are never stored), its config has trust_remote_code off, and served
models lose key_env. Ids are the exporting store's; studio.store.experiments_import remaps them.

The format's names (FORMAT, FORMAT_VERSION, MANIFEST, FILES) live here, beside the checks that
read them; studio.experiments.bundle writes them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from studio.compare.config import CompareConfig
from studio.experiments import bundle_schema as schema
from studio.experiments.bundle_archive import BundleArchive
from studio.experiments.bundle_schema import BundleError
from studio.hosting import HostingPolicy, Limits
from studio.models.adapters import AdapterError, adapter_path
from studio.models.errors import ModelNotFoundError
from studio.models.served import is_served_spec, parse_served_spec
from studio.settings import Settings
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
from studio.tuning.config import TuneConfig

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
T = TypeVar("T")
__all__ = ["BundleError", "Places", "import_bundle", "read_bundle"]

Change = tuple[str, int, str]
REMOTE_CODE_OFF = (
    "trust_remote_code was switched off (running a model's own code is this studio's "
    "operator's decision, made per launch)"
)
FILES_ELSEWHERE = (
    "its checkpoints, log and adapter weights stay with the studio it came from (a bundle "
    "holds records, not files): it cannot continue here; re-run it to train it on this machine"
)
KEY_DROPPED = (
    "key_env was removed from its served models (a bundle does not choose which of this "
    "studio's keys go to a server); add ?key_env=NAME again when you re-run it"
)


@dataclass(frozen=True)
class Places:
    """This studio's folders, where an imported tuning run's files would be: its work folder
    under STUDIO_HOME/tuning, its adapter under the adapters folder. Never the bundle's paths."""

    tuning_dir: Path
    adapters_dir: Path

    @classmethod
    def of(cls, settings: Settings) -> Places:
        return cls(settings.tuning_dir, settings.adapters_dir)


def import_bundle(
    store: Store, path: str | Path, policy: HostingPolicy, settings: Settings
) -> ImportReport:
    """Check a bundle whole, then import it in one transaction; BundleError writes nothing.

    A public demo imports nothing (PolicyRefusal 'demo-read-only'); the policy's limits bound
    the bundle. Paths are never taken from it and operator-only switches are switched off: the
    report's notes say what changed."""
    policy.check_shared_write("importing a bundle")
    bundle, changes = read_bundle(path, policy.limits, Places.of(settings))
    report = store.import_experiments(bundle)
    new_ids = {"comparison": report.comparison_ids, "tuning": report.tuning_ids}
    report.notes.extend(f"{kind[0]}{new_ids[kind][old]}: {text}" for kind, old, text in changes)
    return report


def read_bundle(
    path: str | Path, limits: Limits, places: Places
) -> tuple[ExperimentBundle, list[Change]]:
    """Parse and check a bundle file into records (nothing is written), and what was changed
    on the way in: (run kind, the bundle's run id, what)."""
    path = Path(path)
    if not path.is_file():
        raise BundleError(f"{path}: no such file; give the .zip that `runs bundle export` wrote")
    with BundleArchive(path, limits) as archive:
        if MANIFEST not in archive.names:
            raise BundleError(
                f"{path.name}: no {MANIFEST}; this is not an Instruct Studio experiment bundle"
            )
        _check_manifest(archive.load(MANIFEST), path)
        unknown = sorted(archive.names - {MANIFEST, *FILES})
        if unknown:
            raise BundleError(
                f"{path.name}: holds {unknown[0]!r}, which is not part of a bundle; re-export it"
            )
        missing = [name for name in FILES if name not in archive.names]
        if missing:
            raise BundleError(f"{path.name}: missing {', '.join(missing)}; re-export the bundle")
        raw = {name: _rows(archive.load(name), name) for name in FILES}
    return _Records(raw, places).build()


def _check_manifest(manifest: Any, path: Path) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(
            f"{path.name}: {MANIFEST} does not name the format {FORMAT!r}; this is not an "
            "Instruct Studio experiment bundle"
        )
    version = manifest.get("format_version")
    if version != FORMAT_VERSION or isinstance(version, bool):
        newer = isinstance(version, int) and version > FORMAT_VERSION
        fix = "upgrade Instruct Studio to import it" if newer else "re-export it"
        raise BundleError(
            f"{path.name}: bundle format version {version!r}, but this studio reads version "
            f"{FORMAT_VERSION}; {fix}"
        )
    schema.parse_row(schema.Manifest, manifest, MANIFEST)


def _rows(value: Any, name: str) -> list[Any]:
    if not isinstance(value, list):
        raise BundleError(f"{name}: expected a list of rows, got {schema._kind(value)}")
    return value


class _Records:
    """The bundle's rows as store records, every reference checked, paths recomputed."""

    def __init__(self, raw: dict[str, list[Any]], places: Places) -> None:
        self.raw, self.places = raw, places
        self.changes: list[Change] = []
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
        self.stamp = f"{stamp}-{secrets.token_hex(2)}"

    def build(self) -> tuple[ExperimentBundle, list[Change]]:
        datasets = {d.id: _dataset(d) for d in self._parse(schema.Dataset, "datasets.json")}
        versions = {
            v.id: TemplateVersion(**v.model_dump())
            for v in self._parse(schema.TemplateVersion, "template_versions.json")
        }
        runs, annotations = [], {}
        for where, run in self._each(schema.ComparisonRun, "comparison_runs.json", "run"):
            runs.append(self._comparison(run, datasets, versions, where))
            annotations[("comparison", run.id)] = _annotations(run)
        _unique([r.id for r in runs], "comparison_runs.json", "run")
        config_ids = [c.id for r in runs for c in r.configs]
        _unique(config_ids, "comparison_runs.json", "config")
        tunings = []
        for where, tuning in self._each(schema.TuningRun, "tuning_runs.json", "run"):
            tunings.append(self._tuning(tuning, datasets, versions, where))
            annotations[("tuning", tuning.id)] = _annotations(tuning)
        _unique([t.id for t in tunings], "tuning_runs.json", "run")
        bundle = ExperimentBundle(
            datasets=list(datasets.values()),
            template_versions=list(versions.values()),
            comparison_runs=runs,
            comparison_results=self._results(set(config_ids)),
            tuning_runs=tunings,
            metric_points=self._points({t.id for t in tunings}),
            adapters=self._adapters(datasets, versions, {t.id for t in tunings}),
            annotations=annotations,
        )
        return bundle, self.changes

    def _each(self, model: Any, name: str, noun: str = "row") -> Iterator[tuple[str, Any]]:
        for i, row in enumerate(self.raw[name], 1):
            where = f"{name}: {noun} {i}"
            yield where, schema.parse_row(model, row, where)

    def _parse(self, model: Any, name: str) -> list[Any]:
        parsed = [row for _, row in self._each(model, name)]
        _unique([row.id for row in parsed], name, "row")
        return parsed

    def _comparison(
        self,
        run: schema.ComparisonRun,
        datasets: dict[int, DatasetRecord],
        versions: dict[int, TemplateVersion],
        where: str,
    ) -> ComparisonRun:
        dataset = _known(datasets, run.dataset_id, f"{where}: dataset_id", "datasets.json")
        pool = _known(datasets, run.shot_pool_id, f"{where}: shot_pool_id", "datasets.json")
        positions = [c.position for c in run.configs]
        if len(set(positions)) != len(positions):
            raise BundleError(f"{where}: two configs share a position; re-export the bundle")
        configs, dropped = [], False
        for j, c in enumerate(run.configs):
            at = f"{where}: configs[{j}].template_version_id"
            version = _known(versions, c.template_version_id, at, "template_versions.json")
            spec, changed = _without_key(c.model_spec)
            dropped |= changed
            assert version is not None
            configs.append(ComparisonConfig(
                **{**c.model_dump(), "model_spec": spec},
                template_name=version.template_name, template_version=version.version,
            ))  # fmt: skip
        checked = schema.run_config(CompareConfig, run.config, where)
        config = checked.model_dump(mode="json") if checked else dict(run.config)
        listed = config.get("models")
        models = [_without_key(spec) for spec in listed] if isinstance(listed, list) else []
        if models:
            config["models"] = [spec for spec, _ in models]
        if dropped or any(changed for _, changed in models):
            self.changes.append(("comparison", run.id, KEY_DROPPED))
        assert dataset is not None
        values = run.model_dump(exclude={"display_name", "note", "tags", "dataset_id"})
        values.update(dataset=dataset, configs=configs, config=config)
        if run.judge and isinstance(run.judge.get("model"), str):
            judge_model, changed = _without_key(run.judge["model"])
            values["judge"] = {**run.judge, "model": judge_model}
            if isinstance(config.get("judge"), str):
                config["judge"] = judge_model
            if changed:
                self.changes.append(("comparison", run.id, KEY_DROPPED))
        values["shot_pool"] = pool
        del values["shot_pool_id"]
        return ComparisonRun(**values)

    def _tuning(
        self,
        run: schema.TuningRun,
        datasets: dict[int, DatasetRecord],
        versions: dict[int, TemplateVersion],
        where: str,
    ) -> TuningRun:
        _known(datasets, run.dataset_id, f"{where}: dataset_id", "datasets.json")
        at = f"{where}: template_version_id"
        _known(versions, run.template_version_id, at, "template_versions.json")
        config = _remote_code_off(schema.run_config(TuneConfig, run.config, where), run.config)
        if config != run.config:
            self.changes.append(("tuning", run.id, REMOTE_CODE_OFF))
        self.changes.append(("tuning", run.id, FILES_ELSEWHERE))
        base_model, _ = _without_key(run.base_model)
        work_dir = self.places.tuning_dir / f"{self.stamp}-imported-t{run.id}-{run.name}"
        return TuningRun(
            **run.model_dump(
                include={"id", "name", "status", "dataset_id", "template_version_id", "error"}
            ),
            config=config,
            base_model=base_model,
            work_dir=str(work_dir),
            adapter_path=str(_adapter_folder(self.places, run.name, run.adapter_path, where)),
            progress=run.progress.model_dump(exclude_unset=True),
            summary=None if run.summary is None else run.summary.model_dump(exclude_unset=True),
            stop_requested=False,
            resume=False,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            host=None,
            pid=None,
        )

    def _results(self, config_ids: set[int]) -> list[ComparisonResult]:
        results, seen = [], set()
        for where, row in self._each(schema.Result, "comparison_results.jsonl"):
            if row.config_id not in config_ids:
                raise BundleError(
                    f"{where}: config_id {row.config_id} is not a config of a run in the bundle"
                )
            key = (row.config_id, row.example_index)
            if key in seen:
                raise BundleError(
                    f"{where}: example {row.example_index} of config {row.config_id} appears "
                    "twice; re-export the bundle"
                )
            seen.add(key)
            values = row.model_dump(exclude={"choice_scores"})
            scores = row.choice_scores
            values["choice_scores"] = None if scores is None else [s.model_dump() for s in scores]
            results.append(ComparisonResult(**values))
        return results

    def _points(self, tuning_ids: set[int]) -> dict[int, list[MetricPoint]]:
        points: dict[int, list[MetricPoint]] = {}
        for where, row in self._each(schema.Point, "metric_points.jsonl"):
            if row.tuning_run_id not in tuning_ids:
                raise BundleError(
                    f"{where}: tuning_run_id {row.tuning_run_id} is not in tuning_runs.json"
                )
            point = MetricPoint(**row.model_dump(exclude={"tuning_run_id"}))
            points.setdefault(row.tuning_run_id, []).append(point)
        return points

    def _adapters(
        self,
        datasets: dict[int, DatasetRecord],
        versions: dict[int, TemplateVersion],
        tuning_ids: set[int],
    ) -> list[AdapterRecord]:
        adapters = []
        for where, row in self._each(schema.Adapter, "adapters.json"):
            if row.tuning_run_id is not None and row.tuning_run_id not in tuning_ids:
                raise BundleError(
                    f"{where}: tuning_run_id {row.tuning_run_id} is not in tuning_runs.json"
                )
            _known(datasets, row.dataset_id, f"{where}: dataset_id", "datasets.json")
            at = f"{where}: template_version_id"
            _known(versions, row.template_version_id, at, "template_versions.json")
            values = row.model_dump(exclude={"path", "metrics", "base_model"})
            adapters.append(AdapterRecord(
                **values,
                path=str(_adapter_folder(self.places, row.name, row.path, where)),
                base_model=_without_key(row.base_model)[0],
                metrics=row.metrics.model_dump(exclude_unset=True),
            ))  # fmt: skip
        return adapters


def _remote_code_off(checked: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The tuning config to store: trust_remote_code off, the switch a bundle must never make
    for this studio (resume and re-run read it back)."""
    if isinstance(checked, TuneConfig):
        model = checked.model.model_copy(update={"trust_remote_code": False})
        return checked.model_copy(update={"model": model}).to_dict()
    config = json.loads(json.dumps(given))
    if isinstance(config.get("model"), dict) and "trust_remote_code" in config["model"]:
        config["model"]["trust_remote_code"] = False
    return config


def _dataset(row: schema.Dataset) -> DatasetRecord:
    # The file stays on the exporter's machine: its path there is never stored here.
    return DatasetRecord(**{**row.model_dump(), "path": None})


def _annotations(row: schema.ComparisonRun | schema.TuningRun) -> RunAnnotations:
    return RunAnnotations(row.display_name, row.note, tuple(row.tags))


def _known(records: dict[int, T], wanted: int | None, where: str, file: str) -> T | None:
    if wanted is None:
        return None
    if wanted not in records:
        raise BundleError(f"{where} {wanted} is not in {file}; re-export the bundle")
    return records[wanted]


def _unique(ids: list[int], name: str, noun: str) -> None:
    seen: set[int] = set()
    for i in ids:
        if i in seen:
            raise BundleError(f"{name}: two {noun}s have the id {i}; re-export the bundle")
        seen.add(i)


def _adapter_folder(places: Places, name: str, original: str, where: str) -> Path:
    """A folder under this studio's adapters folder that no launch names (`<name>-imported-
    <hash of the exporter's path>`), the same for a run and its adapter record, so importing
    a bundle twice reuses the adapter record. The weights are not in the bundle: it does not
    exist until the run is trained here."""
    key = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    try:
        return adapter_path(places.adapters_dir, f"{name[:44]}-imported-{key}")
    except AdapterError as exc:
        raise BundleError(f"{where}: {exc}") from None


def _without_key(spec: str) -> tuple[str, bool]:
    """A served-model spec without key_env (which of this studio's secrets a server gets is
    not the bundle's choice); any other spec as it is."""
    if not is_served_spec(spec):
        return spec, False
    try:
        served = parse_served_spec(spec)
    except ModelNotFoundError:
        return spec, False  # unusable as it is: no request is ever made with it
    if served.key_env is None:
        return spec, False
    return replace(served, key_env=None).spec, True
