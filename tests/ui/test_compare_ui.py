"""The Compare tab without a browser: its formatting on a real run, its pacing, its form."""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from studio.compare.engine import (
    CellStarted,
    JudgeStarted,
    RowDone,
    RowJudged,
    RunFinished,
    RunStarted,
)
from studio.compare.metrics import Estimate
from studio.compare.summary import ConfigSummary, paired_summaries, seed_groups, summarize_run
from studio.services import Services, create_services
from studio.settings import load_settings
from studio.store.records import ComparisonResult
from studio.ui.common.formatting import estimate_text
from studio.ui.common.live import LIVE_ROWS, UPDATE_EVERY_S, LiveRun
from studio.ui.compare import views
from studio.ui.compare.chart import accuracy_chart_svg
from studio.ui.compare.form import FORM_FIELDS, parse_ints, parse_mapping, same_file
from studio.ui.compare.tab import CompareTab, build_compare_tab, judge_templates
from studio.ui.compare.views import (
    GRID_FIXED,
    choice_score_rows,
    config_tags,
    grid_position,
    grid_table,
    past_run_rows,
    run_markdown,
    seed_rows,
    summary_headers,
    summary_rows,
)
from tests import needs
from tests.conftest import SHARED_DATA
from tests.ui.judged_runs import judge_prompt, pairwise_run, pointwise_run, sampled_run

SST2 = SHARED_DATA / "sst2"
CI = re.compile(r"^\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]$")


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Iterator[Services]:
    home = tmp_path_factory.mktemp("compare-ui-home")
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    os.symlink(model_home / "models", home / "models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        services = create_services(load_settings(home=home, offline=True))
        yield services
        services.close()


def form_values(**overrides: object) -> dict[str, object]:
    """The Start inputs as the browser sends them (strings, floats, lists)."""
    values: dict[str, object] = {
        "data": str(SST2 / "validation.tsv"),
        "shot_pool": str(SST2 / "train.tsv"),
        "templates": ["sst2-sentiment-completion"],
        "models": ["smollm2-135m-instruct"],
        "shots": "0, 2",
        "seeds": "1,2",
        "limit": 8.0,
        "pool_size": 100.0,
        "scoring": "loglik",
        "selection": "random",
        "quantization": "none",
        "metric": "exact",
        "regex": "",
        "max_new_tokens": 16.0,
        "temperature": 0.0,
        "batch_rows": 16.0,
        "label_column": "",
        "column_map": "",
        "name": " ui test ",
        "calibrate": False,
        "judge": None,
        "judge_template": None,
        "judge_mode": "pointwise",
        "samples": 1.0,
    }
    values.update(overrides)
    return values


@pytest.fixture(scope="module")
def tab(services: Services) -> CompareTab:
    with gr.Blocks():
        return build_compare_tab(services)


class Outputs:
    """A handler's returned values by output component, as gradio assigns them."""

    def __init__(self, components: list[object], values: tuple[object, ...]) -> None:
        assert len(components) == len(values)
        self.components, self.values = components, values

    def __getitem__(self, component: object) -> object:
        return self.values[next(i for i, c in enumerate(self.components) if c is component)]


def config_of(tab: CompareTab, **overrides: object):
    values = form_values(**overrides)
    return tab.handlers.config(tuple(values[name] for name in FORM_FIELDS))


# ---------------------------------------------------------------------------------------------
# No model needed


def test_the_form_sends_every_field_in_order(tab) -> None:
    assert list(tab.form.fields) == list(FORM_FIELDS) == list(form_values())
    assert tab.form.inputs == [tab.form.fields[name] for name in FORM_FIELDS]


def test_the_form_parses_into_the_cli_config(tab) -> None:
    config = config_of(tab)
    assert config.shots == [0, 2] and config.seeds == [1, 2] and config.limit == 8
    assert config.name == "ui test" and config.regex is None and config.label_column is None
    assert config.n_configs == 4
    assert config_of(tab, limit=None).limit is None
    assert config.calibrate is False and config_of(tab, calibrate=True).calibrate is True
    blank = config_of(tab, max_new_tokens=None, pool_size=None, batch_rows=None)
    assert (blank.max_new_tokens, blank.pool_size, blank.batch_rows) == (16, 100, 16)


def test_bad_form_values_are_clear_errors(tab) -> None:
    with pytest.raises(gr.Error, match=r"'shots'.*comma-separated"):
        config_of(tab, shots="0, five")
    with pytest.raises(gr.Error, match="'seeds': give at least one"):
        config_of(tab, seeds=" ")
    with pytest.raises(gr.Error, match="templates"):
        config_of(tab, templates=[])
    with pytest.raises(gr.Error, match="shot counts must be between 0 and 64"):
        config_of(tab, shots="0,100")
    with pytest.raises(gr.Error, match="column mapping"):
        config_of(tab, column_map="label")
    assert config_of(tab, column_map="sentence=text").column_map == {"sentence": "text"}


def test_parse_values_and_same_file(tmp_path: Path) -> None:
    assert parse_ints("0; 1 ,5", "shots") == [0, 1, 5]
    assert parse_mapping(" sentence = text,\nlabel=stars, ") == {
        "sentence": "text",
        "label": "stars",
    }
    assert parse_mapping("") == {}
    with pytest.raises(ValueError, match="'column mapping': 'sentence' is not variable=column"):
        parse_mapping("sentence")
    (tmp_path / "a.csv").write_text("x\n1\n")
    assert same_file(tmp_path / "a.csv", f"{tmp_path}/../{tmp_path.name}/a.csv")
    assert not same_file(tmp_path / "a.csv", "")


def test_live_updates_are_paced() -> None:
    now = [0.0]
    live = LiveRun(n_cells=2, tags=["C1", "C2"], clock=lambda: now[0])
    assert live.apply(RunStarted(run_id=7, total=200))
    assert live.apply(CellStarted(0, "m · t · 0-shot · seed 0"))
    result = ComparisonResult(
        config_id=1, example_index=0, prompt_text="p", gold="a", prediction="b", correct=False,
        latency_ms=12.3, prompt_tokens=3,
    )  # fmt: skip
    due = []
    for done in range(1, 101):
        now[0] += 0.01  # 100 rows/s
        due.append(live.apply(RowDone(0, result, done, 200, 100.0)))
    assert sum(due) == pytest.approx(100 * 0.01 / UPDATE_EVERY_S, abs=1)
    assert len(live.live_rows()) == LIVE_ROWS
    assert live.live_rows()[0] == ["C1", 0, "a", "b", "✗", 12]
    html = live.progress_html()
    assert "100 / 200 rows" in html and "100.0 ex/s" in html and "cell 1/2" in html
    assert 'style="width:50.0%"' in html
    assert live.apply(RunFinished(7, "stopped"))
    assert "run #7 stopped" in live.progress_html()


def summary(position: int, value: float, low: float, high: float, n: int = 8) -> ConfigSummary:
    estimate = Estimate(value, low, high, n)
    return ConfigSummary(
        position + 1, position, f"m · t · {position}-shot · seed 0", "m", "t", 1, position, 0, n,
        estimate, None, None, 10.0,
    )  # fmt: skip


def test_the_chart_draws_bars_with_ci_whiskers() -> None:
    nan = float("nan")
    svg = accuracy_chart_svg(
        [summary(0, 0.5, 0.25, 0.75), summary(1, 0.875, 0.625, 1.0), summary(2, nan, nan, nan, 0)],
        ["C1 · 0-shot", "C2 · 1-shot", "C3 · 2-shot"],
    )
    root = ET.fromstring(svg)  # well-formed XML
    ns = {"s": "http://www.w3.org/2000/svg"}
    bars = root.findall(".//s:rect[@class='cmp-bar']", ns)
    whiskers = root.findall(".//s:line[@class='cmp-ci']", ns)
    assert len(bars) == 2 and len(whiskers) == 2
    assert len(root.findall(".//s:line[@class='cmp-ci-cap']", ns)) == 4
    # Bars scale with accuracy, whiskers span the interval.
    assert float(bars[1].get("width")) / float(bars[0].get("width")) == pytest.approx(1.75)
    first = whiskers[0]
    assert float(first.get("x2")) - float(first.get("x1")) == pytest.approx(
        float(bars[0].get("width"))
    )
    assert "0.875 [0.625, 1.000]" in svg and "no results yet" in svg and "C3 · 2-shot" in svg


def test_estimate_text() -> None:
    assert estimate_text(Estimate(0.8125, 0.78125, 0.84375, 32)) == "0.812 [0.781, 0.844]"
    assert estimate_text(None) == "–"
    assert estimate_text(Estimate(float("nan"), float("nan"), float("nan"), 0)) == "–"


# ---------------------------------------------------------------------------------------------
# On a real run: SmolLM2 over SST-2


@pytest.fixture(scope="module")
def run_id(services: Services, tab: CompareTab) -> int:
    needs.shared_data("sst2", "validation.tsv")
    events = list(services.comparisons.run(config_of(tab)))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"
    return events[0].run_id


@pytest.mark.model
def test_summary_and_seed_tables(services, run_id) -> None:
    summaries = summarize_run(services.store, run_id)
    rows = summary_rows(summaries, "loglik")
    assert [r[0] for r in rows] == ["C1", "C2", "C3", "C4"]
    assert [(r[3], r[4], r[5]) for r in rows] == [(0, 1, 8), (0, 2, 8), (2, 1, 8), (2, 2, 8)]
    assert rows[0][2] == "sst2-sentiment-completion@v1"
    assert all(CI.match(r[6]) and CI.match(r[7]) and r[8] > 0 for r in rows)
    assert all(r[9:] == ["—", "—"] for r in rows)  # no pairing asked for
    paired = summary_rows(summaries, "loglik", paired_summaries(services.store, run_id, 3))
    assert [r[9] for r in paired][2] == "reference" and paired[2][10] == "—"
    for row in paired[:2] + paired[3:]:
        assert re.fullmatch(r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\] \(accuracy\)", row[9])
        assert re.fullmatch(r"McNemar p=[\d.e-]+ · Holm [\d.e-]+ · \d+/\d+", row[10]), row[10]
    assert summary_headers("loglik", 3)[9:] == ["Δ vs C3 [95% CI]", "p · discordant"]
    seeds = seed_rows(seed_groups(summaries))
    assert [(s[2], s[3]) for s in seeds] == [(0, 2), (2, 2)]
    assert re.match(r"^\d\.\d{3} ± \d\.\d{3}$", seeds[0][4])
    assert seeds[0][4].endswith("± 0.000")  # zero-shot prompts do not depend on the seed


@pytest.mark.model
def test_grid_filters_and_cell_details(services, run_id) -> None:
    run = services.store.get_comparison_run(run_id)
    results = services.store.comparison_results(run_id)
    tags = config_tags(run.configs)
    assert tags == ["C1 · 0-shot · seed 1", "C2 · 0-shot · seed 2", "C3 · 2-shot · seed 1",
                    "C4 · 2-shot · seed 2"]  # fmt: skip
    every = grid_table(run, results, "all")
    assert every.headers == [*GRID_FIXED, *tags] and len(every.rows) == 8
    assert every.rows[0][1].endswith("Sentiment:") and every.rows[0][2] == "positive"
    assert all(cell[0] in "✓✗" for row in every.rows for cell in row[3:])
    failures = grid_table(run, results, "failures")
    assert all(any(c.startswith("✗") for c in row[3:]) for row in failures.rows)
    disagreements = grid_table(run, results, "disagreements")
    assert all(len({c[2:] for c in row[3:]}) > 1 for row in disagreements.rows)
    assert f"{len(failures.rows)} of 8 examples (failures)" == failures.note
    assert grid_position(3, 4) == 0 and grid_position(6, 4) == 3 and grid_position(1, 4) == 0

    first = results[0]
    scores = choice_score_rows(first)
    assert [row[0] for row in scores] == ["negative", "positive"]
    assert [row[4] for row in scores].count("◀") == 1
    assert "completed" in run_markdown(run) and "**32/32** rows" in run_markdown(run)
    assert past_run_rows([run])[0][6:] == ["32/32", "completed"]


@pytest.mark.model
def test_results_panel_renders_a_stored_run(tab, run_id) -> None:
    panel = tab.results
    out = Outputs(panel.outputs, tab.handlers.render(run_id, "failures"))
    assert out[panel.run_id] == run_id and not out[panel.resume].visible
    assert list(out[panel.summary]["config"]) == ["C1", "C2", "C3", "C4"]
    assert out[panel.chart].count('class="cmp-ci"') == 4
    grid, note = out[panel.grid].value, out[panel.grid_note]
    assert note.endswith("(failures)") and grid["headers"][:3] == GRID_FIXED
    assert all("✗" in " ".join(row[3:]) for row in grid["data"])


@pytest.mark.model
def test_reopening_a_run_and_selecting_a_cell(tab, services, run_id) -> None:
    row = next(r for r in past_run_rows(services.store.list_comparison_runs()) if r[0] == run_id)
    panel = tab.results
    opened = Outputs(
        [*panel.outputs, *panel.cell_outputs],
        tab.handlers.open_run("all", SimpleNamespace(row_value=row, index=[0, 3])),
    )
    assert opened[panel.run_id] == run_id and "Select a cell" in opened[panel.cell_info]
    grid_row = opened[panel.grid].value["data"][2]
    info, prompt, scores, output, judge = tab.handlers.show_cell(
        run_id,
        SimpleNamespace(row_value=grid_row, index=[2, 5]),  # column 5: C3, 2-shot
    )
    assert "**Example 2**" in info and "C3 · 2-shot · seed 1" in info
    assert prompt.count("Sentiment:") == 3
    assert " ".join(prompt.split()).endswith(grid_row[1][1:])  # the grid shows its end
    assert [r[0] for r in scores.value["data"]] == ["negative", "positive"]
    assert scores.visible and not output.visible and not judge.visible


@pytest.mark.model
def test_the_start_handler_streams_and_stops(tab, services, run_id) -> None:
    values = form_values(shots="0,2", seeds="0", limit=6.0, selection="first")
    request = SimpleNamespace(session_hash="test-session")
    outputs, handlers = tab.run_outputs, tab.handlers
    updates = handlers.start_run(request, "all", *(values[n] for n in FORM_FIELDS))
    first = Outputs(outputs, next(updates))
    assert "Preparing" in first[tab.progress] and first[tab.start].interactive is False
    seen, stopped = [first], False
    for values_out in updates:
        update = Outputs(outputs, values_out)
        seen.append(update)
        if len(update[tab.live]) and not stopped:  # rows are streaming: stop during the 1st cell
            stopped = handlers.request_stop(request).startswith("Stopping")
    assert stopped
    final, panel = seen[-1], tab.results
    assert "stopped" in final[tab.status] and "6/12" in final[tab.status]
    new_run = services.store.list_comparison_runs(limit=1)[0]
    assert new_run.status == "stopped" and new_run.results_done == 6
    assert final[panel.run_id] == new_run.id and "**stopped**" in final[panel.info]
    assert final[tab.start].interactive  # Start is enabled again
    assert final[panel.resume].visible  # and Resume is offered

    # Resume scores only the missing rows, then the run is complete.
    resumed = Outputs(outputs, list(handlers.resume_run(request, "all", new_run.id))[-1])
    assert "completed: 12/12" in resumed[tab.status] and not resumed[panel.resume].visible
    run = services.store.get_comparison_run(new_run.id)
    assert run.status == "completed" and run.results_done == 12


@pytest.mark.model
def test_a_generation_run_shows_scores_and_the_generated_output(tab, services, run_id) -> None:
    config = config_of(tab, scoring="generate", shots="0", seeds="0", limit=3.0, max_new_tokens=4.0)
    events = list(services.comparisons.run(config))
    generated = events[0].run_id
    panel = tab.results
    out = Outputs(panel.outputs, tab.handlers.render(generated, "all"))
    assert list(out[panel.summary].columns)[7] == "mean score [95% CI]"
    assert CI.match(out[panel.summary].iloc[0, 7])
    grid_row = out[panel.grid].value["data"][0]
    info, prompt, scores, output, judge = tab.handlers.show_cell(
        generated, SimpleNamespace(row_value=grid_row, index=[0, 3])
    )
    assert "score" in info and prompt.endswith("Sentiment:")
    assert output.visible and not scores.visible and not judge.visible
    assert output.value == services.store.comparison_results(generated)[0].output


def test_a_calibrated_run_shows_calibrated_accuracy_and_the_prior() -> None:
    def summary(position: int, calibrated: Estimate | None) -> ConfigSummary:
        acc = Estimate(0.306, 0.208, 0.417, 72)
        prior = {"billing": 0.91, "account": 0.09} if calibrated else None
        return ConfigSummary(position + 1, position, f"C{position + 1}", "m", "t", 1, 0, 0, 72,
                             acc, acc, None, 7.0, calibrated, prior)  # fmt: skip

    rows = summary_rows([summary(0, Estimate(0.569, 0.458, 0.681, 72)), summary(1, None)], "loglik")
    assert rows[0][-1] == "0.569 [0.458, 0.681] · prior billing 0.91, account 0.09"
    assert rows[1][-1] == "—"
    assert summary_headers("loglik", 1, calibrated=True)[-1] == (
        "calibrated accuracy [95% CI] · prior"
    )
    plain = summary_rows([summary(1, None)], "loglik")
    assert len(plain[0]) == len(summary_headers("loglik")) == 11


# ---------------------------------------------------------------------------------------------
# Judges and repeated sampling: the form, the live line, and stored runs (tests/ui/judged_runs.py)


def test_the_form_sets_a_judge_and_samples(tab) -> None:
    fields = tab.form.fields
    assert [fields[n].elem_id for n in ("judge", "judge_template", "judge_mode", "samples")] == [
        "compare-judge", "compare-judge-template", "compare-judge-mode", "compare-samples",
    ]  # fmt: skip
    offered = [choice[0] for choice in fields["judge_template"].choices]
    assert offered == ["judge-pairwise", "judge-pass-fail", "judge-score-1to5"]
    assert offered == judge_templates(tab.handlers.services.settings)
    assert "smollm2-135m-instruct" in [choice[0] for choice in fields["judge"].choices]
    plain = config_of(tab)
    assert (plain.judge, plain.judge_template, plain.samples) == (None, None, 1)
    judged = config_of(tab, scoring="generate", judge=" smollm2-135m-instruct ",
                       judge_template="judge-pairwise", judge_mode="pairwise")  # fmt: skip
    assert (judged.judge, judged.judge_template, judged.judge_mode) == (
        "smollm2-135m-instruct", "judge-pairwise", "pairwise",
    )  # fmt: skip
    sampled = config_of(tab, scoring="generate", samples=4.0, temperature=0.7)
    assert sampled.samples == 4 and config_of(tab, samples=None).samples == 1


def test_bad_judge_and_sample_settings_are_clear_errors(tab) -> None:
    with pytest.raises(gr.Error, match="a judge needs both a model and a judge template"):
        config_of(tab, scoring="generate", judge="smollm2-135m-instruct")
    with pytest.raises(gr.Error, match="judges and repeated sampling grade generated answers"):
        config_of(tab, judge="smollm2-135m-instruct", judge_template="judge-pass-fail")
    with pytest.raises(gr.Error, match="samples: 3 at temperature 0"):
        config_of(tab, scoring="generate", samples=3.0)


def test_judging_shows_in_the_live_line_until_the_run_finishes() -> None:
    now = [0.0]
    live = LiveRun(n_cells=2, tags=["C1", "C2"], clock=lambda: now[0])
    live.apply(RunStarted(run_id=9, total=4))
    result = ComparisonResult(
        config_id=1, example_index=0, prompt_text="p", gold="a", prediction="a", correct=True,
        latency_ms=5.0, prompt_tokens=3,
    )  # fmt: skip
    for done in range(1, 5):
        live.apply(RowDone(done % 2, result, done, 4, 50.0))
    assert live.apply(JudgeStarted(total=3))  # judging starts: always shown
    html = live.progress_html()
    assert "4 / 4 rows · judging 0 / 3 answers" in html and 'data-state="running"' in html
    assert 'style="width:0.0%"' in html and "s left" not in html
    due = [live.apply(RowJudged(1, i, {"outcome": "win"}, i + 1, 3)) for i in range(3)]
    assert due == [False, False, True]  # paced, but the last judgement is always shown
    html = live.progress_html()
    assert "judging 3 / 3 answers" in html and "running" in html and "completed" not in html
    live.apply(RunFinished(9, "completed"))
    assert "judging 3 / 3 answers · run #9 completed" in live.progress_html()
    assert views.final_status("completed", 9, 4, 4, None, (3, 3)) == (
        "✓ Run #9 completed: 4/4 rows. Judge: 3/3 answers judged."
    )


@pytest.fixture(scope="module")
def judged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """A tab on a store of its own holding a pairwise-judged, a pointwise-judged and a sampled
    run (no model is run)."""
    home = tmp_path_factory.mktemp("judged-ui-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        services = create_services(load_settings(home=home, offline=True))
        with gr.Blocks():
            tab = build_compare_tab(services)
        store = services.store
        yield SimpleNamespace(
            tab=tab, store=store, pairwise=pairwise_run(store), pointwise=pointwise_run(store),
            sampled=sampled_run(store),
        )  # fmt: skip
        services.close()


def summary_of(judged: SimpleNamespace, run_id: int) -> dict[str, list[object]]:
    panel = judged.tab.results
    frame = Outputs(panel.outputs, judged.tab.handlers.render(run_id, "all"))[panel.summary]
    return {column: list(frame[column]) for column in frame.columns}


def test_a_pairwise_judged_summary_shows_win_tie_loss_and_consistency(judged) -> None:
    summary = summary_of(judged, judged.pairwise)
    assert list(summary)[-3:] == ["W/T/L vs C1", "win rate [95% CI]", "position consistency"]
    assert summary["W/T/L vs C1"] == ["reference", "2/1/1"]
    assert summary["win rate [95% CI]"][1].startswith("0.625 [")
    assert summary["position consistency"] == ["—", "0.75"]
    assert "judge [95% CI]" not in summary and "pass@1" not in summary  # only what it needs


def test_a_pointwise_judged_summary_shows_the_score_and_agreement(judged) -> None:
    summary = summary_of(judged, judged.pointwise)
    assert list(summary)[-2:] == ["judge [95% CI]", "agrees (κ)"]
    assert summary["judge [95% CI]"][0].startswith("0.550 [")
    assert summary["agrees (κ)"] == ["0.75 (κ 0.50)"]
    assert "W/T/L vs C1" not in summary and "pass@1" not in summary


def test_a_sampled_summary_shows_pass_at_k_and_consistency(judged) -> None:
    summary = summary_of(judged, judged.sampled)
    assert list(summary)[-3:] == ["pass@1", "pass@4", "consistency"]
    assert (summary["pass@1"], summary["pass@4"], summary["consistency"]) == (
        ["0.500"], ["0.667"], ["0.75"],
    )  # fmt: skip
    plain = summary_headers("generate")
    assert not {"pass@1", "judge [95% CI]", "W/T/L vs C1"} & set(plain)


def cell(judged: SimpleNamespace, run_id: int, example: int, column: int) -> Outputs:
    grid = Outputs(judged.tab.results.outputs, judged.tab.handlers.render(run_id, "all"))
    row = grid[judged.tab.results.grid].value["data"][example]
    event = SimpleNamespace(row_value=row, index=[example, column])
    return Outputs(judged.tab.results.cell_outputs, judged.tab.handlers.show_cell(run_id, event))


def test_a_pairwise_judge_cell_opens_both_orders_prompts_and_scores(judged) -> None:
    panel = judged.tab.results
    grid = Outputs(panel.outputs, judged.tab.handlers.render(judged.pairwise, "all"))
    marks = [row[4] for row in grid[panel.grid].value["data"]]
    assert marks == ["✗ b · ⚖ win", "✗ b · ⚖ win", "✗ b · ⚖ tie", "✗ b · ⚖ loss"]
    opened = cell(judged, judged.pairwise, 2, 4)  # example 2, C2: the verdict flips
    info, judge = opened[panel.cell_info], opened[panel.judge]
    assert "vs C1: **tie** (the verdict flips with the order)" in info
    assert judge.visible
    text = judge.value
    first, second = text.index("order reference-first"), text.index("order this-first")
    assert first < second
    assert "answer A is C1's, answer B this configuration's): verdict A" in text
    assert "answer A is this configuration's, answer B C1's): verdict A" in text
    assert text.count("--- prompt ---") == 2
    assert "Judge reference-first of example 2" in text[first:second]
    assert "Judge this-first of example 2" in text[second:]
    assert "A logprob -1.000 p 0.800" in text
    # The reference's own cell was not judged: no judge panel.
    assert not cell(judged, judged.pairwise, 2, 3)[panel.judge].visible


def test_a_pointwise_judge_cell_and_a_sampled_cell(judged) -> None:
    panel = judged.tab.results
    opened = cell(judged, judged.pointwise, 3, 3)
    assert "`judge-pass-fail`: verdict **no** · score 0.300" in opened[panel.cell_info]
    text = opened[panel.judge].value
    assert text.startswith("=== judge prompt: verdict no ===")
    assert "no logprob -2.000 p 0.800" in text
    stored = judged.store.comparison_results(judged.pointwise)[3].judgement
    assert views.judge_text(stored, 1).endswith("--- prompt ---\n" + judge_prompt("pointwise", 3))
    sampled = cell(judged, judged.sampled, 1, 3)
    assert "4 samples, 2 right" in sampled[panel.cell_info]
    assert not sampled[panel.judge].visible
    output = sampled[panel.output]
    assert output.visible
    listed = re.findall(r"— sample (\d) ([✓✗]) · score [\d.]+ · prediction: (\w)", output.value)
    assert listed == [("1", "✓", "a"), ("2", "✗", "b"), ("3", "✓", "a"), ("4", "✗", "b")]
    assert grid_table(judged.store.get_comparison_run(judged.sampled),
                      judged.store.comparison_results(judged.sampled)).rows[1][3] == (
        "✓ a (2/4 ✓)"
    )  # fmt: skip
