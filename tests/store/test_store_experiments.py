"""The store's Experiments part: annotations, tallies, protected deletes and bundle import,
on a real database (SQLite file and PostgreSQL)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from studio.store import (
    AdapterRecord,
    ExperimentBundle,
    MetricPoint,
    RunAnnotations,
    Store,
    StoreError,
)


def _tuning(store: Store, name: str = "sst2-qlora", **overrides):
    dataset = store.register_dataset("train", "/data/train.tsv", "tsv", "e" * 64, 50, ["x"])
    fields = {
        "name": name,
        "config": {"name": name, "training": {"seed": 3, "max_steps": 4}},
        "base_model": "smollm2-135m-instruct",
        "work_dir": f"/tmp/work-{name}",
        "adapter_path": f"/srv/adapters/{name}",
        "dataset_id": dataset.id,
    }
    fields.update(overrides)
    return store.create_tuning_run(**fields)


def test_rename_note_and_tags_round_trip(store: Store, make_run) -> None:
    run = make_run()
    tuning = _tuning(store)
    store.rename_run("comparison", run.id, "  zero vs five  ")
    store.annotate_run("comparison", run.id, "5-shot hurts SmolLM2")
    assert store.tag_run("comparison", run.id, "baseline")
    assert not store.tag_run("comparison", run.id, " baseline ")  # already there
    assert store.tag_run("comparison", run.id, "sst2")
    assert store.tag_run("tuning", tuning.id, "baseline")
    notes = store.run_annotations("comparison")
    assert notes[run.id] == RunAnnotations(
        "zero vs five", "5-shot hurts SmolLM2", ("baseline", "sst2")
    )
    assert store.run_annotations("tuning")[tuning.id].tags == ("baseline",)
    assert store.untag_run("comparison", run.id, "sst2")
    assert not store.untag_run("comparison", run.id, "sst2")
    store.rename_run("comparison", run.id, "")
    assert store.run_annotations("comparison", [run.id])[run.id].display_name is None


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda s, r: s.tag_run("comparison", r, ""), "must not be empty"),
        (lambda s, r: s.tag_run("comparison", r, "a,b"), "without commas"),
        (lambda s, r: s.tag_run("comparison", r, "x" * 65), "at most 64"),
        (lambda s, r: s.rename_run("comparison", r, "n" * 257), "at most 256"),
        (lambda s, r: s.tag_run("comparison", r + 99, "ok"), "no comparison run with id c"),
        (lambda s, r: s.tag_run("playground", r, "ok"), "kind must be one of"),
    ],
)
def test_bad_annotations_are_refused_and_change_nothing(store: Store, make_run, call, message):
    run = make_run()
    with pytest.raises(ValueError, match=message):
        call(store, run.id)
    assert store.run_annotations("comparison")[run.id] == RunAnnotations()


def test_tallies_and_flags_follow_the_results(store: Store, make_run, make_result) -> None:
    run = make_run()
    first, second = run.configs[0].id, run.configs[1].id
    for i, right in enumerate([True, False, True]):
        store.add_comparison_result(make_result(first, i, correct=right))
    store.add_comparison_result(make_result(second, 0, correct=False))
    tallies = store.config_tallies([run.id])
    assert (tallies[first].n, tallies[first].n_correct) == (3, 2)
    assert (tallies[second].n, tallies[second].n_correct) == (1, 0)
    assert run.configs[2].id not in tallies
    assert store.correct_flags(first) == [True, False, True]


def test_deleting_a_comparison_run_keeps_shared_template_versions(
    store: Store, make_run, make_result
) -> None:
    doomed = make_run()
    other = make_run()  # same template versions (saved idempotently) and dataset
    store.add_comparison_result(make_result(doomed.configs[0].id, 0))
    store.tag_run("comparison", doomed.id, "old")
    store.finish_comparison_run(doomed.id, "completed")
    report = store.delete_comparison_run(doomed.id)
    assert report.removed == {"configs": 3, "results": 1, "tags": 1}
    assert any("sst2-sentiment@v1" in kept and f"c{other.id}" in kept for kept in report.kept)
    assert any(kept.startswith("dataset sst2") for kept in report.kept)
    assert store.get_comparison_run(doomed.id) is None
    assert store.comparison_results(doomed.id) == []
    assert store.get_comparison_run(other.id) is not None
    assert [v.version for v in store.template_versions("sst2-sentiment")] == [1, 2]


def test_a_running_run_cannot_be_deleted(store: Store, make_run) -> None:
    run = make_run()
    with pytest.raises(ValueError, match="is running; stop it first"):
        store.delete_comparison_run(run.id)
    assert store.get_comparison_run(run.id) is not None


def test_deleting_a_tuning_run_keeps_an_adapter_a_comparison_uses(store: Store, make_run) -> None:
    used, unused = _tuning(store, "used"), _tuning(store, "unused")
    for run in (used, unused):
        store.add_metric_points(run.id, [MetricPoint(step=1, loss=2.0)])
        store.finish_tuning_run(run.id, "completed", summary={"train_loss": 2.0})
        store.register_adapter(
            AdapterRecord(
                name=run.name,
                path=run.adapter_path,
                base_model=run.base_model,
                tuning_run_id=run.id,
            )
        )
    version = store.save_template_version("t", "template: t", "hash-t")
    comparison = make_run([version])
    spec = replace(comparison.configs[0], model_spec="adapters/used")
    store.create_comparison_run(
        name="adapter eval", scoring="loglik", config={}, dataset_id=comparison.dataset.id,
        shot_pool_id=None, n_examples=4,
        configs=[_spec(spec)],
    )  # fmt: skip
    kept = store.delete_tuning_run(used.id)
    assert kept.removed["adapter records"] == 0 and kept.removed["metric points"] == 1
    assert any("adapter used (record kept" in line for line in kept.kept)
    record = store.adapter_record(used.adapter_path)
    assert record is not None and record.tuning_run_id is None
    gone = store.delete_tuning_run(unused.id)
    assert gone.removed["adapter records"] == 1
    assert store.adapter_record(unused.adapter_path) is None
    assert store.metric_points(unused.id) == []
    with pytest.raises(ValueError, match="is used by comparison run"):
        store.delete_adapter_record(record.id or 0)


def _spec(config):
    from studio.store import ComparisonConfigSpec

    return ComparisonConfigSpec(
        model_spec=config.model_spec, template_version_id=config.template_version_id,
        shots=config.shots, seed=config.seed, selection=config.selection, label=config.label,
    )  # fmt: skip


def test_import_remaps_ids_and_reuses_datasets_and_versions(
    store: Store, make_run, make_result
) -> None:
    run = make_run()
    store.add_comparison_result(make_result(run.configs[1].id, 4, correct=False))
    store.finish_comparison_run(run.id, "completed")
    tuning = _tuning(store)
    versions = [store.get_template_version(c.template_version_id) for c in run.configs]
    bundle = ExperimentBundle(
        datasets=[run.dataset, store.get_dataset(tuning.dataset_id)],
        template_versions=[v for v in dict.fromkeys(versions) if v is not None],
        comparison_runs=[store.get_comparison_run(run.id)],
        comparison_results=store.comparison_results(run.id),
        tuning_runs=[store.get_tuning_run(tuning.id)],  # queued: must not start anywhere
        metric_points={tuning.id: [MetricPoint(step=1, loss=1.5)]},
        annotations={("comparison", run.id): RunAnnotations("imported", "n", ("x",))},
    )
    report = store.import_experiments(bundle)
    new_id = report.comparison_ids[run.id]
    assert new_id != run.id and report.added["comparison runs"] == 1
    assert report.reused == {"datasets": 2, "template versions": 2}
    copy = store.get_comparison_run(new_id)
    assert copy is not None and copy.results_done == 1 and copy.status == "completed"
    assert [c.template_version_id for c in copy.configs] == [
        c.template_version_id for c in run.configs
    ]
    assert store.comparison_results(new_id)[0].correct is False
    assert store.run_annotations("comparison")[new_id] == RunAnnotations("imported", "n", ("x",))
    imported = store.get_tuning_run(report.tuning_ids[tuning.id])
    assert imported is not None and imported.status == "cancelled"
    assert store.next_queued_tuning_run().id == tuning.id  # only the original waits


def test_a_bad_bundle_writes_nothing(store: Store, make_run, make_result) -> None:
    run = make_run()
    store.add_comparison_result(make_result(run.configs[0].id, 0))
    results = store.comparison_results(run.id)
    broken = replace(results[0], config_id=123456)
    bundle = ExperimentBundle(
        datasets=[run.dataset],
        template_versions=[store.get_template_version(run.configs[0].template_version_id)],
        comparison_runs=[replace(run, configs=run.configs[:1])],
        comparison_results=[broken],
    )
    before = len(store.list_comparison_runs())
    with pytest.raises((ValueError, StoreError), match="config 123456"):
        store.import_experiments(bundle)
    assert len(store.list_comparison_runs()) == before
