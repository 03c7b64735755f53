"""Experiment bundles: a real run exported from one studio and imported into another, and every
kind of bad bundle refused with nothing written."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.experiments.bundle import export_bundle, import_bundle
from studio.experiments.refs import parse_refs
from studio.hosting import HostingPolicy
from studio.settings import Settings, load_settings
from studio.store import Store
from tests.experiments.conftest import Lab

POLICY = HostingPolicy.desktop()


@pytest.fixture
def other_settings(tmp_path: Path) -> Settings:
    """Another studio's settings: its own home (and so its own tuning folder) and adapters."""
    home = tmp_path / "other"
    return load_settings(home=home, adapters_dir=home / "adapters")


@pytest.fixture
def other(other_settings: Settings) -> Iterator[Store]:
    """Another studio's store (its own SQLite file)."""
    store = Store(f"sqlite:///{other_settings.home / 'studio.db'}")
    yield store
    store.close()


@pytest.fixture(scope="module")
def bundle(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "experiments.zip"
    store = lab.services.store
    store.tag_run("comparison", lab.shots_sweep, "bundled")
    store.rename_run("comparison", lab.shots_sweep, "sweep for the team")
    counts = export_bundle(store, parse_refs([f"c{lab.shots_sweep}", f"t{lab.tuning}"]), path)
    assert counts["comparison_results.jsonl"] == 24 and counts["adapters.json"] == 1
    return path


@pytest.mark.model
def test_import_into_another_studio_keeps_every_row(
    lab: Lab, bundle: Path, other: Store, other_settings: Settings
) -> None:
    source = lab.services.store
    report = import_bundle(other, bundle, POLICY, other_settings)
    new_c, new_t = report.comparison_ids[lab.shots_sweep], report.tuning_ids[lab.tuning]
    copied, original = other.get_comparison_run(new_c), source.get_comparison_run(lab.shots_sweep)
    assert copied is not None and original is not None
    assert (copied.config, copied.status, copied.results_done) == (
        original.config, original.status, original.results_done,
    )  # fmt: skip
    assert [(c.label, c.template_name, c.template_version) for c in copied.configs] == [
        (c.label, c.template_name, c.template_version) for c in original.configs
    ]

    def rows(store: Store, run_id: int) -> list[tuple]:
        return [(r.example_index, r.prompt_text, r.gold, r.prediction, r.correct, r.choice_scores)
                for r in store.comparison_results(run_id)]  # fmt: skip

    assert rows(other, new_c) == rows(source, lab.shots_sweep)
    notes = other.run_annotations("comparison")[new_c]
    assert notes.tags == ("bundled",) and notes.display_name == "sweep for the team"
    tuned = other.get_tuning_run(new_t)
    assert tuned is not None and tuned.summary == source.get_tuning_run(lab.tuning).summary
    assert other.metric_points(new_t) == source.metric_points(lab.tuning)
    (adapter,) = other.list_adapter_records()
    assert adapter.tuning_run_id == new_t and adapter.name == "reviews-lora"
    # A second import adds runs again but reuses the datasets and template versions.
    again = import_bundle(other, bundle, POLICY, other_settings)
    with zipfile.ZipFile(bundle) as archive:
        datasets = len(json.loads(archive.read("datasets.json")))  # data, shot pool, train data
    assert again.reused["template versions"] == 1 and again.reused["datasets"] == datasets
    assert "datasets" not in again.added
    assert again.reused["adapters"] == 1
    assert len(other.template_versions("reviews-sentiment")) == 1


def _rewrite(source: Path, target: Path, change: dict[str, bytes | None]) -> Path:
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for name in old.namelist():
            if name in change:
                if change[name] is not None:
                    new.writestr(name, change[name])
            else:
                new.writestr(name, old.read(name))
    return target


def _manifest(bundle: Path, **values: object) -> bytes:
    with zipfile.ZipFile(bundle) as archive:
        manifest = json.loads(archive.read("manifest.json"))
    manifest.update(values)
    return json.dumps(manifest).encode()


@pytest.mark.model
@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("not a zip", "not a zip file"),
        ("no manifest", "no manifest.json; this is not an Instruct Studio experiment bundle"),
        ("foreign format", "does not name the format"),
        ("newer version", "bundle format version 2, but this studio reads version 1; upgrade"),
        ("missing file", "missing comparison_results.jsonl"),
        ("broken json", "comparison_runs.json: not valid JSON"),
        ("missing field", "comparison_results.jsonl: row 1: missing prompt_text"),
        ("unknown dataset", "dataset_id 999 is not in datasets.json"),
        ("bad tag", "comparison_runs.json: run 1: tags: expected a list of strings"),
        ("bad result", "correct: expected true or false, got a string"),
    ],
)
def test_a_bad_bundle_is_refused_and_writes_nothing(
    bundle: Path, other: Store, other_settings: Settings, tmp_path: Path, case: str, message: str
) -> None:
    with zipfile.ZipFile(bundle) as archive:
        runs = json.loads(archive.read("comparison_runs.json"))
        results = archive.read("comparison_results.jsonl").decode().splitlines()
    first = json.loads(results[0])
    wrong_last = json.dumps({**json.loads(results[-1]), "correct": "yes"})  # after valid rows
    target = tmp_path / "bad.zip"
    if case == "not a zip":
        target.write_text("hello")
    else:
        change: dict[str, bytes | None] = {
            "no manifest": {"manifest.json": None},
            "foreign format": {"manifest.json": _manifest(bundle, format="mlflow")},
            "newer version": {"manifest.json": _manifest(bundle, format_version=2)},
            "missing file": {"comparison_results.jsonl": None},
            "broken json": {"comparison_runs.json": b"[{"},
            "missing field": {"comparison_results.jsonl": json.dumps(
                {k: v for k, v in first.items() if k != "prompt_text"}).encode()},
            "unknown dataset": {"comparison_runs.json": json.dumps(
                [{**runs[0], "dataset_id": 999}]).encode()},
            "bad tag": {"comparison_runs.json": json.dumps([{**runs[0], "tags": [3]}]).encode()},
            "bad result": {
                "comparison_results.jsonl": "\n".join([*results[:-1], wrong_last]).encode()},
        }[case]  # fmt: skip
        _rewrite(bundle, target, change)
    with pytest.raises(ValueError, match=message):
        import_bundle(other, target, POLICY, other_settings)
    assert other.list_comparison_runs() == [] and other.list_tuning_runs() == []
    assert other.latest_template_versions() == [] and other.list_adapter_records() == []
