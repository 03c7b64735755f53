"""The Experiments tab's handlers without a browser, on a real store: list and filter, open,
annotate, delete with confirmation, compare, export and import a bundle."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from studio.compare.engine import (
    JudgeStarted,
    RowDone,
    RowJudged,
    RunFinished,
    RunStarted,
)
from studio.experiments.refs import parse_ref
from studio.services import Services, create_services
from studio.settings import load_settings
from studio.store import ComparisonConfigSpec, ComparisonResult, MetricPoint, Store
from studio.ui.experiments.form import selected_refs
from studio.ui.experiments.handlers import ExperimentsHandlers, follow_rerun
from studio.ui.experiments.tab import build_experiments_tab
from studio.ui.experiments.views import (
    LIST_HEADERS,
    MARKED_POINTS,
    curves_frame,
    curves_svg,
)
from tests.ui.judged_runs import pairwise_run, pointwise_run, sampled_run

NO_FILTERS = ("",) * 9


def _comparison(store: Store, name: str, verdicts: list[bool]) -> int:
    version = store.save_template_version("reviews", "template: reviews", "hash-reviews")
    data = store.register_dataset("reviews.csv", "/d/reviews.csv", "csv", "a" * 64, 4, ["text"])
    run = store.create_comparison_run(
        name=name, scoring="loglik", config={"name": name, "shots": [0]}, dataset_id=data.id,
        shot_pool_id=None, n_examples=len(verdicts),
        configs=[ComparisonConfigSpec(model_spec="smollm2-135m-instruct",
                                      template_version_id=version.id, shots=0, seed=1,
                                      selection="first", label="smollm2 · reviews · 0-shot")],
    )  # fmt: skip
    for i, right in enumerate(verdicts):
        store.add_comparison_result(ComparisonResult(
            config_id=run.configs[0].id, example_index=i, prompt_text=f"Review {i}\nSentiment:",
            gold="positive", prediction="positive" if right else "negative", correct=right,
            latency_ms=5.0, prompt_tokens=4,
        ))  # fmt: skip
    store.finish_comparison_run(run.id, "completed")
    return run.id


def _tuning(store: Store, name: str, losses: list[float]) -> int:
    run = store.create_tuning_run(name=name, config={"name": name, "training": {"seed": 0}},
                                  base_model="smollm2-135m-instruct", work_dir="/nonexistent",
                                  adapter_path=f"/nonexistent/{name}")  # fmt: skip
    store.add_metric_points(run.id, [MetricPoint(step=i + 1, loss=v) for i, v in enumerate(losses)])
    store.finish_tuning_run(run.id, "completed", summary={"train_loss": losses[-1]})
    return run.id


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        built = create_services(load_settings(home=tmp_path / "home", offline=True))
        yield built
        built.close()


def test_the_tab_builds_inside_blocks(services: Services) -> None:
    with gr.Blocks():
        build_experiments_tab(services)


def test_list_filters_open_and_annotate(services: Services) -> None:
    h = ExperimentsHandlers(services)
    first = _comparison(services.store, "zero-shot", [True, True, False, True])
    tuned = _tuning(services.store, "lora-a", [2.0, 1.5, 1.2])
    frame, note, choices = h.refresh(*NO_FILTERS)
    assert list(frame.columns) == LIST_HEADERS
    assert list(frame["id"]) == [f"t{tuned}", f"c{first}"] and "2 shown" in note
    assert choices == [f"t{tuned} · lora-a", f"c{first} · zero-shot"]
    assert frame.iloc[1]["headline"].startswith("acc 0.750 [")
    frame, _, _ = h.refresh("tuning", *NO_FILTERS[1:])
    assert list(frame["id"]) == [f"t{tuned}"]
    _, note, _ = h.refresh("", "", "", "", "", "", "", "yesterday", "")
    assert note == "⚠ From: 'yesterday' is not a date; use YYYY-MM-DD"

    assert h.annotate(f"c{first}", "tag", "baseline") == f"Tagged c{first}: baseline."
    assert h.annotate(f"c{first}", "rename", "first try") == f"Renamed c{first}."
    assert h.annotate(f"c{first}", "tag", "a,b").startswith("Tagged")
    assert h.annotate(f"c{first}", "tag", "") == "⚠ type a tag (several: separate them with commas)"
    assert h.annotate(None, "note", "x") == "⚠ Select a run in the list to open it."
    frame, _, _ = h.refresh("", "", "baseline", *NO_FILTERS[3:])
    assert list(frame["name"]) == ["first try"]
    opened, info, summary, examples, config, template, curve, _log = h.open(f"c{first}")
    assert opened == f"c{first}" and "### c" in info and "`baseline`" in info
    assert "dataset: `reviews.csv`" in info and list(summary["n"]) == [4]
    assert list(examples["correct"]) == ["✓", "✓", "✗", "✓"] and "shots:" in config
    assert template.startswith("# reviews@v1") and curve.empty
    *_, curve, _ = h.open(f"t{tuned}")
    assert list(curve["loss"]) == [2.0, 1.5, 1.2]


def test_delete_asks_first_and_then_reports_what_stayed(services: Services) -> None:
    h = ExperimentsHandlers(services)
    doomed = _comparison(services.store, "doomed", [True])
    kept = _comparison(services.store, "kept", [False])
    question, show = h.ask_delete(f"c{doomed}")
    assert show and "cannot be undone" in question
    assert services.store.get_comparison_run(doomed) is not None  # asking deletes nothing
    text = h.delete(f"c{doomed}")
    assert text.startswith(f"Deleted comparison c{doomed} (1 configs, 1 results).")
    assert f"template reviews@v1 (used by run(s) c{kept})" in text
    assert h.delete(f"c{doomed}").startswith("⚠ no comparison run")


def test_compare_export_and_bundle_round_trip(services: Services, tmp_path: Path) -> None:
    h = ExperimentsHandlers(services)
    a = _comparison(services.store, "a", [True, False, True, True])
    b = _comparison(services.store, "b", [True, True, False, True])
    t1, t2 = _tuning(services.store, "l1", [2.0, 1.0]), _tuning(services.store, "l2", [3.0, 2.5])
    selection = [f"c{a} · a", f"c{b} · b", f"t{t1} · l1", f"t{t2} · l2"]
    assert [str(r) for r in selected_refs(selection)] == [f"c{a}", f"c{b}", f"t{t1}", f"t{t2}"]
    status, metrics, diff, loss, _eval, agreement, per_example, judges, result = h.compare(
        selection, True
    )
    assert status.startswith("Comparing") and len(metrics) == 4
    assert set(diff["setting"]) == {"name", "shots", "training.seed"}  # "—" where a run lacks it
    tuning_only = h.compare(selection[2:], True)
    assert list(tuning_only[2]["setting"]) == ["name"]  # the seed is the same: hidden
    assert list(h.rediff(tuning_only[-1], False)["setting"]) == ["name", "training.seed"]
    assert set(loss["run"]) == {f"t{t1} l1", f"t{t2} l2"} and len(loss) == 4
    assert "same verdict on **50.0%**" in agreement and len(per_example) == 4
    assert list(h.rediff(result, False)["setting"]) == ["name", "shots", "training.seed"]
    assert judges == ""  # no run is judged or sampled: no section
    assert h.compare(selection[:1], True)[0] == "⚠ select at least two runs to compare"

    note, path = h.export(selection[:2], "jsonl")
    assert note == "Exported 8 rows of 2 run(s) as JSONL." and path is not None
    rows = [json.loads(line) for line in Path(path).read_text().splitlines()]
    assert rows[0]["prompt"] == "Review 0\nSentiment:"
    assert h.export([], "csv") == ("⚠ choose at least one run to export", None)

    note, bundle = h.export_bundle(selection[:1])
    assert bundle is not None and note.startswith("Bundle of 1 run(s)")
    assert h.import_bundle(SimpleNamespace(name=bundle)).startswith("Imported c")
    assert len(services.store.list_comparison_runs()) == 3
    bad = tmp_path / "bad.zip"
    bad.write_text("not a zip")
    assert (
        h.import_bundle(str(bad))
        == "⚠ Nothing imported: bad.zip: not a zip file; an experiment bundle is a .zip"
    )
    assert h.import_bundle(None) == "⚠ Choose a bundle (.zip) to import first."
    assert os.path.exists(path)


def test_loss_curves_draw_one_line_per_run() -> None:
    points = [
        {"run": f"t{n} lora", "step": step, "metric": "loss", "value": value}
        for n, values in ((1, [2.0, 1.0]), (2, [3.0, 2.5]))
        for step, value in enumerate(values, 1)
    ]
    svg = curves_svg(curves_frame(points, "loss"), "Train loss")
    root = ET.fromstring(svg)
    lines = [e for e in root.iter() if e.tag == "polyline"]
    assert [line.get("data-run") for line in lines] == ["t1 lora", "t2 lora"]
    # Step 1 of t2 is the highest value (3.0): top of the plot; step 2 of t1 the lowest: bottom.
    assert lines[1].get("points", "").split()[0].endswith(",28.0")
    assert lines[0].get("points", "").split()[1].endswith(",198.0")
    assert "nothing logged" in curves_svg(curves_frame([], "eval_loss"), "Eval loss")


def test_a_single_eval_point_is_drawn_as_a_dot() -> None:
    points = [{"run": "t3 lora", "step": 10, "metric": "eval_loss", "value": 0.4}]
    root = ET.fromstring(curves_svg(curves_frame(points, "eval_loss"), "Eval loss"))
    dots = [e for e in root.iter() if e.tag == "circle"]
    assert [(d.get("cx"), d.get("cy")) for d in dots] == [("52.0", "198.0")]
    long = [
        {"run": "t4", "step": step, "metric": "loss", "value": 1 / step}
        for step in range(1, MARKED_POINTS + 2)
    ]
    root = ET.fromstring(curves_svg(curves_frame(long, "loss"), "Train loss"))
    assert not [e for e in root.iter() if e.tag == "circle"]  # dense curves stay lines


def test_judged_and_sampled_runs_show_their_judge_lineage_and_summaries(services) -> None:
    h = ExperimentsHandlers(services)
    store = services.store
    pairwise, pointwise, sampled = pairwise_run(store), pointwise_run(store), sampled_run(store)
    info = h.open(f"c{pairwise}")[1]
    assert (
        "- judge: `smollm2-135m-instruct` · `judge-pairwise@v1` · pairwise vs C1 (verdicts "
        "scored by loglik)" in info
    )
    assert "C2 vs C1: win/tie/loss 2/1/1, win rate 0.625" in info
    assert "position consistency 0.75" in info and "sampling:" not in info
    info = h.open(f"c{sampled}")[1]
    assert "- sampling: 4 samples per example at temperature 0.7 (seeds 0)" in info
    assert "pass@1 0.500, pass@2 0.611, pass@4 0.667" in info and "consistency 0.75" in info
    assert "judge:" not in info

    refs = [f"c{pairwise} · a", f"c{pointwise} · b", f"c{sampled} · c"]
    judges = h.compare(refs, True)[7]
    blocks = judges.split("\n\n")
    assert blocks[0] == "**Judges and repeated sampling**"
    assert [b.splitlines()[0] for b in blocks[1:]] == [
        f"**c{n}**" for n in (pairwise, pointwise, sampled)
    ]
    assert "pairwise vs C1" in blocks[1] and "win/tie/loss 2/1/1" in blocks[1]
    assert "`judge-pass-fail@v1` · pointwise" in blocks[2]
    assert "agrees with the metric 0.75 (kappa 0.50)" in blocks[2]
    assert "4 samples per example at temperature 0.7" in blocks[3] and "pass@4 0.667" in blocks[3]


def test_a_rerun_of_a_judged_run_reports_the_judging() -> None:
    result = ComparisonResult(
        config_id=1, example_index=0, prompt_text="p", gold="a", prediction="a", correct=True,
        latency_ms=5.0, prompt_tokens=3,
    )  # fmt: skip
    events = [RunStarted(8, 2), RowDone(0, result, 1, 2, 10.0), RowDone(1, result, 2, 2, 10.0),
              JudgeStarted(1), RowJudged(1, 0, {"outcome": "win"}, 1, 1),
              RunFinished(8, "completed")]  # fmt: skip
    lines = list(follow_rerun(iter(events), parse_ref("c3")))
    assert lines[-2:] == [
        "Re-running c3 as c8: all rows in; the judge has graded 1/1.",
        "Re-run of c3 is c8, completed.",
    ]
