"""The Experiments engine on real runs: list, open, compare, export, tag, delete, re-run."""

from __future__ import annotations

import csv
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
from scipy.stats import binomtest

from studio.compare.summary import summarize_run
from studio.experiments.actions import describe_delete
from studio.experiments.catalog import Filters, list_entries
from studio.experiments.detail import open_run
from studio.experiments.diff import compare_runs
from studio.experiments.export import export_runs
from studio.experiments.refs import RunRef
from studio.ui.experiments.views import agreement_markdown
from tests.experiments.conftest import Lab, wait_finished

pytestmark = pytest.mark.model


def refs(*texts: str) -> list[RunRef]:
    from studio.experiments.refs import parse_refs

    return parse_refs(list(texts))


def test_one_list_holds_comparisons_tuning_runs_and_adapters(lab: Lab) -> None:
    store = lab.services.store
    entries = {str(e.ref): e for e in list_entries(store)}
    c_zero, c_sweep, t_run = f"c{lab.three_shot}", f"c{lab.shots_sweep}", f"t{lab.tuning}"
    assert {c_zero, c_sweep, t_run} <= set(entries)
    adapters = [e for e in entries.values() if e.kind == "adapter"]
    assert [a.name for a in adapters] == ["reviews-lora"] and adapters[0].status == "ready"
    # The headline is the best config with the Compare tab's own interval.
    best = max(summarize_run(store, lab.shots_sweep), key=lambda s: s.accuracy.value)
    headline = entries[c_sweep].headline
    assert headline.estimate == best.accuracy and headline.best_label == best.label
    assert f"{best.accuracy.value:.3f} [{best.accuracy.low:.3f}, " in headline.text
    assert entries[c_sweep].progress == "2 configs · 24/24 rows"
    tuned = store.get_tuning_run(lab.tuning)
    assert tuned is not None and tuned.summary is not None
    assert entries[t_run].headline.train_loss == tuned.summary["train_loss"]
    assert entries[t_run].headline.eval_loss == tuned.summary["eval_loss"]
    assert entries[t_run].templates == ("reviews-sentiment@v1",)


def test_filters(scratch_lab: Lab) -> None:
    lab = scratch_lab  # a copy of its own: this test changes the store
    store = lab.services.store

    def listed(**filters: object) -> set[str]:
        return {str(e.ref) for e in list_entries(store, Filters(**filters))}  # type: ignore[arg-type]

    assert listed(kind="tuning") == {f"t{lab.tuning}"}
    assert listed(kind="comparison", search="sweep") == {f"c{lab.shots_sweep}"}
    assert f"c{lab.three_shot}" in listed(model="SMOLLM2", template="reviews-sentiment")
    assert listed(dataset="no-such-data") == set()
    assert listed(status="failed") == set()
    assert listed(until=date.today() - timedelta(days=1)) == set()
    assert f"t{lab.tuning}" in listed(since=date.today())
    lab.services.experiments.tag(RunRef("comparison", lab.three_shot), "baseline, reviews")
    try:
        assert listed(tag="Baseline") == {f"c{lab.three_shot}"}
        assert listed(search="reviews", kind="comparison") >= {f"c{lab.three_shot}"}
    finally:
        lab.services.experiments.untag(RunRef("comparison", lab.three_shot), "baseline")
        lab.services.experiments.untag(RunRef("comparison", lab.three_shot), "reviews")
    with pytest.raises(ValueError, match="kind must be one of"):
        Filters(kind="exchange")


def test_opening_a_run_shows_config_lineage_metrics_examples(lab: Lab) -> None:
    store = lab.services.store
    detail = open_run(store, RunRef("comparison", lab.shots_sweep))
    assert detail.config["shots"] == [0, 3] and detail.config["limit"] == 12
    (version,) = detail.lineage.templates
    assert version.template_name == "reviews-sentiment" and "{{ label }}" in version.content
    assert detail.lineage.dataset is not None and detail.lineage.dataset.name == "reviews[eval]"
    assert detail.lineage.base_models == ("smollm2-135m-instruct",)
    assert detail.lineage.seeds == (1,)
    assert [s.n for s in detail.summaries] == [12, 12]
    assert len(detail.examples) == 24
    stored = {
        (r.config_id, r.example_index): r.prompt_text
        for r in store.comparison_results(lab.shots_sweep)
    }
    run = store.get_comparison_run(lab.shots_sweep)
    first = detail.examples[0]
    assert first["prompt"] == stored[(run.configs[0].id, first["example_index"])]

    tuning = open_run(store, RunRef("tuning", lab.tuning))
    assert tuning.config["name"] == "reviews-lora"
    assert tuning.lineage.seeds == (tuning.config["training"]["seed"],)
    assert [p.step for p in tuning.points if p.loss is not None] == [1, 2]
    assert "reviews-lora" in tuning.lineage.adapters[0]
    assert tuning.log  # the worker's log tail
    with pytest.raises(ValueError, match="no comparison run c9999"):
        open_run(store, RunRef("comparison", 9999))


def test_comparing_runs_diffs_configs_and_shows_agreement(lab: Lab) -> None:
    store = lab.services.store
    result = compare_runs(
        store, refs(f"c{lab.three_shot}", f"c{lab.shots_sweep}", f"t{lab.tuning}")
    )
    assert [m["run"] for m in result.metrics] == [
        f"c{lab.three_shot}",
        f"c{lab.shots_sweep}",
        f"t{lab.tuning}",
    ]
    different = {row.key for row in result.config_diff if row.differs}
    assert {"name", "shots"} <= different
    assert {(c["metric"], c["step"]) for c in result.curves} >= {("loss", 1), ("loss", 2)}
    agreement = result.agreement
    assert agreement is not None and agreement.n == 12
    # Computed by hand from the stored verdicts of each run's best config.
    verdicts = []
    for run_id in (lab.three_shot, lab.shots_sweep):
        best = max(summarize_run(store, run_id), key=lambda s: (s.accuracy.value, -s.position))
        verdicts.append(
            {r.example_index: r.correct for r in store.comparison_results(run_id, best.config_id)}
        )
    same = sum(verdicts[0][i] == verdicts[1][i] for i in range(12)) / 12
    assert agreement.pairwise[0][2] == pytest.approx(same)
    assert agreement.all_right == sum(verdicts[0][i] and verdicts[1][i] for i in range(12))
    # The second run paired with the first: McNemar on the discordant examples (scipy's binomial).
    only_second = sum(verdicts[1][i] and not verdicts[0][i] for i in range(12))
    only_first = sum(verdicts[0][i] and not verdicts[1][i] for i in range(12))
    assert agreement.paired[0] is None
    paired = agreement.paired[1]
    assert paired is not None and paired.n == 12
    assert paired.discordant == (only_second, only_first)
    assert paired.difference.value == pytest.approx((only_second - only_first) / 12)
    expected = (
        binomtest(only_second, only_second + only_first).pvalue if only_first + only_second else 1.0
    )
    assert paired.p_value == pytest.approx(expected)
    assert f"discordant {only_second}/{only_first}" in agreement_markdown(result)
    with pytest.raises(ValueError, match="at least two"):
        compare_runs(store, refs(f"c{lab.three_shot}"))


def test_export_csv_json_jsonl_carry_every_row_with_its_prompt(lab: Lab, tmp_path: Path) -> None:
    store = lab.services.store
    selection = refs(f"c{lab.shots_sweep}", f"t{lab.tuning}")
    points = len(store.metric_points(lab.tuning))
    assert export_runs(store, selection, "csv", tmp_path / "runs.csv") == 24 + points
    with open(tmp_path / "runs.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    examples = [r for r in rows if r["run"] == f"c{lab.shots_sweep}"]
    assert len(examples) == 24 and all(r["prompt"] for r in examples)
    assert json.loads(examples[0]["choice_scores"])[0]["choice"] in ("positive", "negative")
    export_runs(store, selection, "jsonl", tmp_path / "runs.jsonl")
    lines = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert len(lines) == len(rows)
    export_runs(store, selection, "json", tmp_path / "runs.json")
    document = json.loads((tmp_path / "runs.json").read_text())
    assert [run["run"] for run in document["runs"]] == [str(r) for r in selection]
    assert document["runs"][0]["lineage"]["templates"][0]["text"].startswith("#")
    assert len(document["rows"]) == len(rows)
    with pytest.raises(ValueError, match="format must be one of"):
        export_runs(store, selection, "xlsx", tmp_path / "runs.xlsx")
    assert not (tmp_path / "runs.xlsx").exists()


def test_delete_keeps_what_others_use_and_rerun_repeats_the_settings(scratch_lab: Lab) -> None:
    lab = scratch_lab  # a copy of its own: this test changes the store
    services = lab.services
    store = services.store
    rerun_events = list(services.experiments.rerun_comparison(RunRef("comparison", lab.three_shot)))
    new_id = rerun_events[-1].run_id
    assert new_id != lab.three_shot
    old, new = summarize_run(store, lab.three_shot), summarize_run(store, new_id)
    assert [s.accuracy for s in new] == [s.accuracy for s in old]  # loglik scoring is deterministic
    assert (
        store.get_comparison_run(new_id).config == store.get_comparison_run(lab.three_shot).config
    )
    report = services.experiments.delete(RunRef("comparison", new_id))
    text = describe_delete(report)
    assert f"Deleted comparison c{new_id} (1 configs, 12 results)" in text
    assert f"template reviews-sentiment@v1 (used by run(s) c{lab.three_shot}" in text
    assert store.get_comparison_run(new_id) is None
    assert len(store.comparison_results(lab.three_shot)) == 12


def test_rerun_of_a_tuning_run_queues_the_same_config_under_a_new_name(scratch_lab: Lab) -> None:
    lab = scratch_lab  # a copy of its own: this test changes the store
    services = lab.services
    queued = services.experiments.rerun_tuning(RunRef("tuning", lab.tuning))
    assert queued.name == "reviews-lora-rerun2"
    original = services.store.get_tuning_run(lab.tuning)
    assert {**queued.config, "name": None} == {**original.config, "name": None}
    done = wait_finished(services, queued.id)
    assert done.status == "completed", done.error
    # The next re-run, of the original or of the re-run, takes the next free name.
    assert services.experiments.free_name(queued.name) == "reviews-lora-rerun3"
    with pytest.raises(ValueError, match="adapter"):
        services.experiments.rename(RunRef("adapter", 1), "x")
