"""Importing a bundle someone else made: crafted paths, switches, types, bombs and nesting.

Real stores and real files throughout: a source studio records a comparison run and a tuning run
(with its metric points and adapter) through the store API, so no model loads; export_bundle
writes the bundle, and each test rewrites one part of it the way an attacker or a broken tool
would, then imports it into this studio (the `settings` fixture's home). A refused bundle
names the problem and the fix (what to do, the setting, or the accepted values) and changes not
one row of any table nor one byte of any file under the home (tests/snapshots.py)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import sqlite3
import struct
import subprocess
import sys
import tracemalloc
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.compare.config import build_config
from studio.experiments.bundle import export_bundle, import_bundle
from studio.experiments.refs import parse_refs
from studio.hosting import HostingPolicy, Limits, Mode, PolicyRefusal
from studio.settings import Settings
from studio.store import AdapterRecord, ComparisonConfigSpec, ComparisonResult, MetricPoint, Store
from studio.tuning.config import TuneConfig, build_tune_config, flat_config
from tests.conftest import ROOT
from tests.snapshots import assert_unchanged, store_snapshot

REVIEWS = ROOT / "studio" / "samples" / "reviews.csv"
TEMPLATE = ROOT / "studio" / "prompts" / "reviews-sentiment.yaml"
DESKTOP = HostingPolicy.desktop()
Rows = dict[str, Any]  # bundle file name -> its rows (the manifest: a dict)


def _tune_config() -> dict[str, Any]:
    return flat_config(
        name="reviews-lora", model="smollm2-135m-instruct", quantization="none",
        data=str(REVIEWS), format="template", template="reviews-sentiment", max_steps=2,
    ).to_dict()  # fmt: skip


def _record_runs(store: Store, home: Path) -> None:
    """Comparison run c1 (0- vs 3-shot, 2 rows each) and tuning run t1 with its adapter."""
    content = TEMPLATE.read_text()
    version = store.save_template_version(
        "reviews-sentiment", content, hashlib.sha256(content.encode()).hexdigest()
    )
    data = store.register_dataset("reviews.csv", str(REVIEWS), "csv", "a" * 64, 12, ["text"])
    pool = store.register_dataset("reviews-pool", str(REVIEWS), "csv", "b" * 64, 20, ["text"])
    config = build_config(
        name="sweep", data=str(REVIEWS), templates=["reviews-sentiment"], limit=2,
        models=["smollm2-135m-instruct"], shots=[0, 3], seeds=[1],
    )  # fmt: skip
    run = store.create_comparison_run(
        name="sweep", scoring="loglik", config=config.model_dump(mode="json"),
        dataset_id=data.id, shot_pool_id=pool.id, n_examples=2,
        configs=[ComparisonConfigSpec(model_spec="smollm2-135m-instruct", shots=shots, seed=1,
                                      template_version_id=version.id, selection="first",
                                      label=f"{shots}-shot") for shots in (0, 3)],
    )  # fmt: skip
    for cfg in run.configs:
        for i in range(2):
            store.add_comparison_result(ComparisonResult(
                config_id=cfg.id, example_index=i, prompt_text=f"Review {i}\nSentiment:",
                gold="positive", prediction="positive", correct=i == 0, latency_ms=3.5,
                prompt_tokens=9, correct_norm=True,
                choice_scores=[{"choice": "positive", "logprob": -0.5, "length": 1}],
            ))  # fmt: skip
    store.finish_comparison_run(run.id, "completed")
    store.tag_run("comparison", run.id, "team")
    store.rename_run("comparison", run.id, "sweep for the team")
    adapter = home / "adapters" / "reviews-lora"
    tuning = store.create_tuning_run(
        name="reviews-lora", config=_tune_config(), base_model="smollm2-135m-instruct",
        work_dir=str(home / "tuning" / "20250101-000000-reviews-lora"),
        adapter_path=str(adapter), dataset_id=data.id, template_version_id=version.id,
    )  # fmt: skip
    store.set_tuning_progress(tuning.id, {"step": 2, "total_steps": 2, "loss": 0.5})
    store.add_metric_points(
        tuning.id, [MetricPoint(step=1, loss=1.0), MetricPoint(step=2, loss=0.5)]
    )
    summary = {"steps": 2, "train_loss": 0.5, "eval_loss": None, "device": "cpu"}
    store.finish_tuning_run(tuning.id, "completed", summary=summary)
    store.register_adapter(AdapterRecord(
        name="reviews-lora", path=str(adapter), base_model="smollm2-135m-instruct",
        tuning_run_id=tuning.id, dataset_id=data.id, template_version_id=version.id,
        metrics=summary,
    ))  # fmt: skip


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("source-studio")
    path = home / "bundle.zip"
    with Store(f"sqlite:///{home / 'studio.db'}") as source:
        _record_runs(source, home)
        counts = export_bundle(source, parse_refs(["c1", "t1"]), path)
    assert counts["comparison_results.jsonl"] == 4 and counts["adapters.json"] == 1
    return path


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    """This studio's store, in the `settings` fixture's fresh home."""
    with Store(settings.database_url) as opened:
        yield opened


def read_rows(bundle: Path) -> Rows:
    rows: Rows = {}
    with zipfile.ZipFile(bundle) as archive:
        for name in archive.namelist():
            text = archive.read(name).decode()
            if name.endswith(".jsonl"):
                rows[name] = [json.loads(line) for line in text.splitlines() if line.strip()]
            else:
                rows[name] = json.loads(text)
    return rows


def write_rows(rows: Rows, target: Path) -> Path:
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, value in rows.items():
            if name.endswith(".jsonl") and isinstance(value, list):
                archive.writestr(name, "".join(json.dumps(row) + "\n" for row in value))
            else:
                archive.writestr(name, value if isinstance(value, str) else json.dumps(value))
    return target


def crafted(bundle: Path, tmp_path: Path, change: Callable[[Rows], None]) -> Path:
    rows = read_rows(bundle)
    change(rows)
    return write_rows(rows, tmp_path / "crafted.zip")


def refused(
    store: Store,
    settings: Settings,
    path: Path,
    message: str,
    fix: str,
    policy: HostingPolicy = DESKTOP,
) -> ValueError:
    """Import `path`, expect a refusal naming the problem (`message`) and the `fix`, and check
    that every table's rows and every file under the home are what they were."""
    before = store_snapshot(settings.home)
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        import_bundle(store, path, policy, settings)
    assert fix in str(caught.value), f"the fix {fix!r} is not in {str(caught.value)!r}"
    assert_unchanged(before, store_snapshot(settings.home), f"refusing {path.name}")
    assert "Traceback" not in str(caught.value)
    return caught.value


# -- the valid bundle ---------------------------------------------------------------------------


def test_a_valid_bundle_round_trips(bundle: Path, store: Store, settings: Settings) -> None:
    report = import_bundle(store, bundle, DESKTOP, settings)
    with Store(f"sqlite:///{bundle.parent / 'studio.db'}") as source:
        original = source.get_comparison_run(1)
        copied = store.get_comparison_run(report.comparison_ids[1])
        assert original is not None and copied is not None
        assert copied.config == original.config and copied.status == "completed"
        assert [(c.label, c.shots, c.template_name) for c in copied.configs] == [
            (c.label, c.shots, c.template_name) for c in original.configs
        ]

        def rows(store: Store, run_id: int) -> list[tuple[Any, ...]]:
            return [(r.example_index, r.correct, r.choice_scores)
                    for r in store.comparison_results(run_id)]  # fmt: skip

        assert rows(store, copied.id) == rows(source, 1)
        tuned, trained = store.get_tuning_run(report.tuning_ids[1]), source.get_tuning_run(1)
        assert tuned is not None and trained is not None
        assert tuned.config == trained.config and tuned.summary == trained.summary
        assert tuned.progress == trained.progress
        assert store.metric_points(tuned.id) == source.metric_points(1)
    notes = store.run_annotations("comparison")[copied.id]
    assert notes.tags == ("team",) and notes.display_name == "sweep for the team"
    (adapter,) = store.list_adapter_records()
    assert adapter.tuning_run_id == tuned.id and adapter.path == tuned.adapter_path
    assert any("stay with the studio it came from" in note for note in report.notes)
    again = import_bundle(store, bundle, DESKTOP, settings)
    assert again.reused == {"datasets": 2, "template versions": 1, "adapters": 1}


# -- paths and switches are this studio's, never the bundle's ----------------------------------

HOSTILE_PATHS = ["/etc/cron.d", "../../../outside", "relative/work", "~/.ssh", "/", ""]


@pytest.mark.parametrize("hostile", HOSTILE_PATHS)
def test_paths_are_never_taken_from_a_bundle(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path, hostile: str
) -> None:
    def change(rows: Rows) -> None:
        run = rows["tuning_runs.json"][0]
        run["work_dir"], run["adapter_path"] = hostile, hostile
        rows["adapters.json"][0]["path"] = hostile
        for dataset in rows["datasets.json"]:
            dataset["path"] = hostile

    report = import_bundle(store, crafted(bundle, tmp_path, change), DESKTOP, settings)
    run = store.get_tuning_run(report.tuning_ids[1])
    assert run is not None
    tuning_dir, adapters_dir = settings.tuning_dir.resolve(), settings.adapters_dir.resolve()
    work, adapter = Path(run.work_dir), Path(run.adapter_path)
    assert work.is_absolute() and work.resolve().parent == tuning_dir
    assert adapter.is_absolute() and adapter.resolve().parent == adapters_dir
    assert "-imported-" in work.name and "-imported-" in adapter.name
    # The files are not in the bundle: nothing exists there until the run trains here.
    assert not work.exists() and not adapter.exists()
    (record,) = store.list_adapter_records()
    assert record.path == run.adapter_path
    with sqlite3.connect(settings.home / "studio.db") as db:
        assert db.execute("select path from datasets").fetchall() == [(None,), (None,)]
    assert run.host is None and run.pid is None


def test_trust_remote_code_never_arrives_on(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path
) -> None:
    def change(rows: Rows) -> None:
        rows["tuning_runs.json"][0]["config"]["model"]["trust_remote_code"] = True
        rows["tuning_runs.json"][0]["config"]["model"]["spec"] = "/srv/models/evil-model"

    report = import_bundle(store, crafted(bundle, tmp_path, change), DESKTOP, settings)
    run = store.get_tuning_run(report.tuning_ids[1])
    assert run is not None and run.config["model"]["trust_remote_code"] is False
    # What resume and re-run build (jobs.resume_run, actions.rerun_tuning) and what the worker
    # validates (worker.train_run) all read the stored config.
    assert build_tune_config(run.config).model.trust_remote_code is False
    assert TuneConfig.model_validate(run.config).model.trust_remote_code is False
    assert any("trust_remote_code was switched off" in note for note in report.notes)
    # Even a partial config (no data section, so not a whole TuneConfig) loses it.
    partial = crafted(bundle, tmp_path, lambda rows: rows["tuning_runs.json"][0].update(
        config={"name": "x", "model": {"trust_remote_code": True}}))  # fmt: skip
    report = import_bundle(store, partial, DESKTOP, settings)
    stored = store.get_tuning_run(report.tuning_ids[1])
    assert stored is not None and stored.config["model"] == {"trust_remote_code": False}


def test_served_models_lose_their_key_env(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path
) -> None:
    served = "openai:gpt@https://collector.example/v1?key_env=OPENAI_API_KEY"

    def change(rows: Rows) -> None:
        run = rows["comparison_runs.json"][0]
        run["config"]["models"] = [served]
        for config in run["configs"]:
            config["model_spec"] = served

    report = import_bundle(store, crafted(bundle, tmp_path, change), DESKTOP, settings)
    run = store.get_comparison_run(report.comparison_ids[1])
    assert run is not None
    specs = {*run.config["models"], *(c.model_spec for c in run.configs)}
    assert specs == {"openai:gpt@https://collector.example/v1"}
    assert any("key_env was removed" in note for note in report.notes)


@pytest.mark.parametrize(
    ("field", "value"),
    [("push_to_hub", True), ("hub_token", "hf_secret"), ("output_dir", "/etc")],
)
def test_operator_only_settings_are_refused_by_name(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path, field: str, value: object
) -> None:
    path = crafted(bundle, tmp_path, lambda rows: rows["tuning_runs.json"][0]["config"][
        "training"].update({field: value}))  # fmt: skip
    message = f"tuning_runs.json: run 1: config.training.{field}: unknown field"
    refused(store, settings, path, message, fix="re-export it")


def test_the_public_demo_imports_nothing(bundle: Path, store: Store, settings: Settings) -> None:
    demo = HostingPolicy(mode=Mode.DEMO)
    error = refused(store, settings, bundle, "importing a bundle is switched off", "Fix: run the "
                    "studio yourself (make run)", demo)  # fmt: skip
    assert isinstance(error, PolicyRefusal) and error.rule == "demo-read-only"
    assert "STUDIO_DEMO" in str(error)


# -- types: refused with the field named, nothing written ---------------------------------------


def _set(file: str, index: int | None, *path: str | int, value: Any) -> Callable[[Rows], None]:
    """Set rows[file][index][path...] (index None: the file is one object, the manifest)."""

    def change(rows: Rows) -> None:
        target = rows[file] if index is None else rows[file][index]
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return change


# (the change, the message naming the field and what is wrong, the fix: what the field accepts or
# what to do). For a wrong type the accepted type is the fix.
@pytest.mark.parametrize(
    ("change", "message", "fix"),
    [
        (_set("comparison_runs.json", 0, "configs", 0, "shots", value="3"),
         "comparison_runs.json: run 1: configs[0].shots: expected an integer, got a string",
         "expected an integer"),
        (_set("comparison_runs.json", 0, "config", "shots", value=["0", "3"]),
         "run 1: config.shots: expected a list of integers, got a string at config.shots[0]",
         "expected a list of integers"),
        (_set("comparison_runs.json", 0, "n_examples", value=True),
         "run 1: n_examples: expected an integer, got true/false", "expected an integer"),
        (_set("tuning_runs.json", 0, "progress", value=[1, 2]),
         "tuning_runs.json: run 1: progress: expected an object, got a list",
         "expected an object"),
        (_set("tuning_runs.json", 0, "config", "lora", "r", value="16"),
         "tuning_runs.json: run 1: config.lora.r: expected an integer, got a string",
         "expected an integer"),
        (_set("tuning_runs.json", 0, "config", value=[]),
         "tuning_runs.json: run 1: config: expected an object, got a list", "expected an object"),
        (_set("tuning_runs.json", 0, "summary", "train_loss", value="low"),
         "run 1: summary.train_loss: expected a number, got a string", "expected a number"),
        (_set("comparison_results.jsonl", 3, "prompt_text", value=None),
         "comparison_results.jsonl: row 4: prompt_text: expected a string, got null",
         "expected a string"),
        (_set("comparison_results.jsonl", 3, "correct", value="yes"),
         "row 4: correct: expected true or false, got a string", "expected true or false"),
        (_set("datasets.json", 0, "colour", value="red"),
         "datasets.json: row 1: colour: unknown field", "re-export it"),
        (_set("datasets.json", 1, "created_at", value=1700000000),
         "datasets.json: row 2: created_at: expected an ISO date-time string",
         "expected an ISO date-time string"),
        (_set("metric_points.jsonl", 1, "step", value=2**40),
         "metric_points.jsonl: row 2: step: Input should be less than or equal to 2147483647",
         "less than or equal to 2147483647"),
        (_set("adapters.json", 0, "metrics", value={"loss": "x"}),
         "adapters.json: row 1: metrics.loss: unknown field", "re-export it"),
        (_set("template_versions.json", 0, "template_name", value="../../etc/passwd"),
         "row 1: template_name: '../../etc/passwd' is not a valid template name",
         "(lowercase letters, digits, . _ -)"),
        (_set("tuning_runs.json", 0, "name", value="../escape"),
         "tuning_runs.json: run 1: name: '../escape' is not a valid adapter name",
         "(letters, digits, . _ -)"),
        (_set("comparison_runs.json", 0, "tags", value="team"),
         "comparison_runs.json: run 1: tags: expected a list, got a string", "expected a list"),
        (_set("comparison_runs.json", 0, "status", value="queued"),
         "run 1: status: must be one of running, completed",
         "must be one of running, completed, stopped, interrupted, failed"),
        (_set("comparison_runs.json", 0, "dataset_id", value=999),
         "comparison_runs.json: run 1: dataset_id 999 is not in datasets.json",
         "re-export the bundle"),
        (_set("manifest.json", None, "created_at", value=None),
         "manifest.json: created_at: expected an ISO date-time string",
         "expected an ISO date-time string"),
    ],
)  # fmt: skip
def test_wrong_types_are_refused_naming_the_field(
    bundle: Path,
    store: Store,
    settings: Settings,
    tmp_path: Path,
    change: Callable[[Rows], None],
    message: str,
    fix: str,
) -> None:
    refused(store, settings, crafted(bundle, tmp_path, change), message, fix)
    assert store.list_comparison_runs() == [] and store.list_tuning_runs() == []


def test_a_bad_last_row_writes_none_of_the_rows_before_it(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path
) -> None:
    path = crafted(bundle, tmp_path, _set("adapters.json", 0, "base_model", value=7))
    refused(store, settings, path, "adapters.json: row 1: base_model: expected a string, got an "
            "integer", fix="expected a string")  # fmt: skip


# -- limits: checked from the archive's directory, before anything is decompressed --------------


def _peak_memory(action: Callable[[], object]) -> int:
    """Bytes Python allocated at the peak while `action` ran: a decompressed bomb would show."""
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def _bomb(bundle: Path, target: Path, size: int) -> Path:
    """The bundle with `size` bytes of spaces appended to comparison_results.jsonl: a few KiB
    compressed."""
    rows = read_rows(bundle)
    text = "".join(json.dumps(row) + "\n" for row in rows["comparison_results.jsonl"])
    rows["comparison_results.jsonl"] = text + " " * size
    return write_rows(rows, target)


def test_a_zip_bomb_is_refused_before_it_is_decompressed(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path
) -> None:
    bomb = _bomb(bundle, tmp_path / "bomb.zip", 64 * 2**20)
    assert bomb.stat().st_size < 200 * 1024
    small = HostingPolicy.desktop(limits=Limits(bundle_mb=1))
    peak = _peak_memory(lambda: refused(store, settings, bomb, "holds more than 64.0 MiB "
        "uncompressed, above this studio's limit of 1 MiB", "Fix: export fewer runs per bundle, "
        "or raise STUDIO_MAX_BUNDLE_MB", small))  # fmt: skip
    assert peak < 8 * 2**20, peak


def test_a_member_that_expands_too_far_is_refused(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path
) -> None:
    bomb = _bomb(bundle, tmp_path / "bomb.zip", 8 * 2**20)
    error = refused(store, settings, bomb, "comparison_results.jsonl expands",
                    "Fix: re-export the bundle", HostingPolicy.desktop())  # fmt: skip
    assert "more than the limit of 200-fold (the hosting policy's bundle_ratio)" in str(error)


def _patch_sizes(path: Path, member: str, claimed: int) -> None:
    """Make the zip's local header and directory both claim `claimed` uncompressed bytes."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    local = data.find(b"PK\x03\x04")
    while local >= 0:
        (length,) = struct.unpack_from("<H", data, local + 26)
        if data[local + 30 : local + 30 + length] == name:
            struct.pack_into("<L", data, local + 22, claimed)
            break
        local = data.find(b"PK\x03\x04", local + 4)
    central = data.find(b"PK\x01\x02")
    while central >= 0:
        (length,) = struct.unpack_from("<H", data, central + 28)
        if data[central + 46 : central + 46 + length] == name:
            struct.pack_into("<L", data, central + 24, claimed)
            break
        central = data.find(b"PK\x01\x02", central + 4)
    path.write_bytes(bytes(data))


def test_a_directory_that_lies_about_sizes_cannot_blow_memory(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path
) -> None:
    bomb = _bomb(bundle, tmp_path / "liar.zip", 64 * 2**20)
    _patch_sizes(bomb, "comparison_results.jsonl", 2000)  # claims 2 KB, inflates to 64 MiB
    peak = _peak_memory(lambda: refused(store, settings, bomb,
        "comparison_results.jsonl is damaged", "re-export the bundle"))  # fmt: skip
    assert peak < 8 * 2**20, peak


def test_too_many_members_are_refused(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path
) -> None:
    rows = read_rows(bundle)
    rows.update({f"padding-{i}.json": "[]" for i in range(100)})
    # The fix: the setting that bounds it, and what a real bundle looks like.
    fix = "(the hosting policy's bundle_members); an exported bundle has 8"
    error = refused(store, settings, write_rows(rows, tmp_path / "many.zip"), "108 members", fix)
    assert "limit of 64 members" in str(error)
    fewer = HostingPolicy.desktop(limits=Limits(bundle_members=4))
    refused(store, settings, bundle, "8 members, above the limit of 4", fix, fewer)


def test_an_unknown_member_is_refused(
    bundle: Path, store: Store, settings: Settings, tmp_path: Path
) -> None:
    rows = {**read_rows(bundle), "../../evil.py": "print('hi')"}
    refused(store, settings, write_rows(rows, tmp_path / "x.zip"),
            "holds '../../evil.py', which is not part of a bundle", "re-export it")  # fmt: skip


def test_a_gzip_bomb_is_not_a_bundle(store: Store, settings: Settings, tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with gzip.open(bomb, "wb") as handle:
        for _ in range(64):
            handle.write(bytes(2**20))
    peak = _peak_memory(lambda: refused(store, settings, bomb, "not a zip file",
                                              "an experiment bundle is a .zip"))  # fmt: skip
    assert peak < 8 * 2**20, peak


NUMBERS = "bundle numbers are finite and fit in 64 bits"  # what a number may be


@pytest.mark.parametrize(
    ("text", "message", "fix"),
    [
        ("[" * 100_000 + "]" * 100_000, "nested more than 32 levels deep",
         "a real bundle nests 4 levels"),
        ("[" * 40 + "]" * 40, "nested more than 32 levels deep", "a real bundle nests 4 levels"),
        ('[{"id": 1' + "0" * 5000 + "}]", "an integer of 5001 digits", NUMBERS),
        ('[{"id": 1e400}]', "too large for a number", NUMBERS),
        ('[{"id": NaN}]', "NaN is not a number", NUMBERS),
        ('[{"name": "a\\u0000b"}]', "a text holds a NUL character", "re-export it"),
        (b"\xff\xfe[]", "not UTF-8 text", "re-export it"),
    ],
)  # fmt: skip
def test_hostile_json_gets_a_clear_error(
    bundle: Path,
    store: Store,
    settings: Settings,
    tmp_path: Path,
    text: str | bytes,
    message: str,
    fix: str,
) -> None:
    rows = read_rows(bundle)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, value in rows.items():
            if name == "datasets.json":
                archive.writestr(name, text)
            elif name.endswith(".jsonl"):
                archive.writestr(name, "".join(json.dumps(row) + "\n" for row in value))
            else:
                archive.writestr(name, json.dumps(value))
    path = tmp_path / "json.zip"
    path.write_bytes(buffer.getvalue())
    assert "datasets.json" in str(refused(store, settings, path, message, fix))


# -- the command line ---------------------------------------------------------------------------


def _cli(*args: str, home: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "STUDIO_HOME": str(home), "STUDIO_OFFLINE": "1", **env}
    environment.pop("STUDIO_DB_URL", None)
    studio = str(Path(sys.executable).with_name("studio"))
    return subprocess.run(
        [studio, *args], capture_output=True, text=True, env=environment, cwd=ROOT, timeout=300
    )


def test_the_command_line_imports_with_this_studios_policy(bundle: Path, tmp_path: Path) -> None:
    home = tmp_path / "cli-home"
    home.mkdir()
    demo = _cli("runs", "bundle", "import", str(bundle), home=home, STUDIO_DEMO="1")
    assert demo.returncode == 2 and "demo-read-only" in demo.stderr, demo.stderr
    assert "importing a bundle is switched off" in demo.stderr
    assert "Fix: run the studio yourself" in demo.stderr
    assert "Traceback" not in demo.stderr
    with Store(f"sqlite:///{home / 'studio.db'}") as store:
        assert store.list_comparison_runs() == [] and store.list_tuning_runs() == []
    small = _cli("runs", "bundle", "import", str(bundle), home=home, STUDIO_MAX_BUNDLE_MB="1")
    assert small.returncode == 0, small.stderr
    assert "c1->c1, t1->t1" in small.stdout and "note: t1: its checkpoints" in small.stdout
