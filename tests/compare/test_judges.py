"""Judges grade free-form answers: verdict scales, refusals that name the fix, both orders of a
pairwise judgement from this answer's side, and a real pairwise-judged run on the Self-Instruct
seed tasks that stores every judge prompt with the judge's own log-probabilities, stops during
judging and resumes without judging anything twice."""

from __future__ import annotations

import math
import threading

import pytest

from studio.compare.config import CompareConfigError, build_config
from studio.compare.engine import JudgeStarted, RowJudged, RunFinished
from studio.compare.judges import (
    ORDERS,
    Judge,
    JudgeJob,
    _judgement,
    check_judge_template,
    rubric_of,
)
from studio.compare.summary import judge_summaries
from studio.services import create_services
from studio.settings import PROMPTS_DIR
from studio.store.records import ComparisonResult
from studio.templates import BuiltPrompt, PromptTemplate, load_template
from tests import needs

MODEL = "smollm2-135m-instruct"


def _template(choices: list[str], text: str = "{{ instruction }} {{ output }}") -> PromptTemplate:
    return PromptTemplate(name="j", mode="completion", template=text, answer="", choices=choices)


def test_verdict_scales() -> None:
    scale = rubric_of(_template(["1", "2", "3", "4", "5"]), "pointwise")
    assert scale.values == (0.0, 0.25, 0.5, 0.75, 1.0)
    assert rubric_of(_template(["No", "Yes"]), "pointwise").values == (0.0, 1.0)
    pair = rubric_of(_template(["tie", "B", "A"]), "pairwise")
    assert pair.values == (0.5, 0.0, 1.0)  # preference for answer A


@pytest.mark.parametrize(
    ("choices", "mode", "fix"),
    [
        (["good", "great", "meh"], "pointwise", "numeric scale"),
        (["A", "B"], "pairwise", "choices: [A, B, tie]"),
        (["yes", "correct"], "pointwise", "pass/fail pair"),
    ],
)
def test_unusable_verdicts_are_refused_with_the_fix(choices, mode, fix) -> None:
    with pytest.raises(CompareConfigError, match="judge template 'j'") as err:
        rubric_of(_template(choices), mode)
    assert fix in str(err.value) and "Fix:" in str(err.value)


def test_a_judge_template_must_read_what_its_mode_grades_and_only_known_columns() -> None:
    pairwise = load_template("judge-pairwise", PROMPTS_DIR)
    columns = ["instruction", "input", "output"]
    with pytest.raises(CompareConfigError, match=r"does not fit a pointwise judge.*Fix:"):
        check_judge_template(pairwise, "pointwise", columns)
    assert check_judge_template(pairwise, "pairwise", columns).mode == "pairwise"
    stray = _template(["yes", "no"], "{{ question }} {{ output }}")
    with pytest.raises(CompareConfigError, match=r"reads \['question'\].*column_map"):
        check_judge_template(stray, "pointwise", columns)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"judge": MODEL}, "judge and judge_template"),
        ({"judge": MODEL, "judge_template": "judge-pass-fail", "scoring": "loglik"}, "generate"),
        ({"samples": 4, "scoring": "generate"}, "temperature above 0"),
        ({"samples": 4, "temperature": 0.7}, "scoring: generate"),
        (
            {"judge": MODEL, "judge_template": "judge-pairwise", "judge_mode": "pairwise",
             "scoring": "generate"},
            "pairwise judge compares configurations",
        ),
        ({"reference": 3, "seeds": [0, 1]}, "reference 3 is not a configuration"),
    ],
)  # fmt: skip
def test_judge_and_sampling_settings_are_checked_before_a_run(values, message) -> None:
    with pytest.raises(CompareConfigError, match=message):
        build_config(data="x.csv", templates=["t"], models=[MODEL], **values)


def _job(this: str, ref: str) -> JudgeJob:
    result = ComparisonResult(
        config_id=2, example_index=0, prompt_text="p", gold="g", prediction=this,
        correct=False, latency_ms=1.0, prompt_tokens=1, output=this,
    )  # fmt: skip
    return JudgeJob(
        result, (BuiltPrompt("ref first", None, "", ""), BuiltPrompt("this", None, "", ""))
    )


def _part(verdict: str, value: float) -> dict:
    return {"verdict": verdict, "value": value, "raw": None, "scores": None}


def test_pairwise_verdicts_are_read_from_this_answers_side_in_both_orders() -> None:
    template = load_template("judge-pairwise", PROMPTS_DIR)
    judge = Judge(MODEL, template, rubric_of(template, "pairwise"), "loglik")
    # The reference is read as A first, then this answer: "B" then "A" both prefer this answer.
    won = _judgement(judge, _job("x", "y"), [_part("B", 0.2), _part("A", 0.9)])
    assert (won["outcome"], won["consistent"]) == ("win", True)
    assert [o["order"] for o in won["orders"]] == list(ORDERS)
    assert won["score"] == pytest.approx((0.8 + 0.9) / 2)
    # "A" in both orders is position bias, not a preference: inconsistent, counted as a tie.
    biased = _judgement(judge, _job("x", "y"), [_part("A", 0.8), _part("A", 0.8)])
    assert (biased["outcome"], biased["consistent"]) == ("tie", False)
    lost = _judgement(judge, _job("x", "y"), [_part("A", 0.9), _part("B", 0.1)])
    assert lost["outcome"] == "loss"


@pytest.fixture(scope="module")
def judged_services(tmp_path_factory, model_home):
    from studio.settings import load_settings

    home = tmp_path_factory.mktemp("judged")
    for item in model_home.iterdir():
        (home / item.name).symlink_to(item)
    settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
    services = create_services(settings)
    yield services
    services.close()


def _pairwise_config(seeds) -> object:
    return build_config(
        data=str(seeds),
        templates=["alpaca-instruction"],
        models=[MODEL],
        seeds=[0, 1],
        scoring="generate",
        metric="rouge_l",
        temperature=0.7,
        max_new_tokens=8,
        limit=3,
        batch_rows=2,  # the judge grades one pair (two prompts) per call: a stop lands between
        judge=MODEL,
        judge_template="judge-pairwise",
        judge_mode="pairwise",
    )


@pytest.mark.model
def test_a_pairwise_judged_run_stores_its_prompts_stops_and_resumes(
    judged_services, tmp_path
) -> None:
    seeds = needs.shared_data("self-instruct", "seed_tasks.jsonl")
    services = judged_services
    stop = threading.Event()
    events = []
    for event in services.comparisons.run(_pairwise_config(seeds), stop):
        events.append(event)
        if isinstance(event, RowJudged):
            stop.set()  # stop during judging, after the first judgement is stored
    assert isinstance(events[-1], RunFinished) and events[-1].status == "stopped"
    run_id = events[-1].run_id
    started = next(e for e in events if isinstance(e, JudgeStarted))
    assert started.total == 3  # configuration 2 against the reference, per example
    judged_before = {
        r.example_index: r.judgement
        for r in services.store.comparison_results(run_id)
        if r.judgement is not None
    }
    assert 1 <= len(judged_before) < 3

    resumed = list(services.comparisons.resume(run_id))
    assert resumed[-1].status == "completed"
    assert [e.example_index for e in resumed if isinstance(e, RowJudged)] == sorted(
        set(range(3)) - set(judged_before)
    )  # nothing judged twice
    results = services.store.comparison_results(run_id)
    run = services.store.get_comparison_run(run_id)
    assert run.judge["template"] == "judge-pairwise" and run.judge["mode"] == "pairwise"
    version = services.store.get_template_version(run.judge["template_version_id"])
    assert version.template_name == "judge-pairwise"
    reference = {r.example_index: r for r in results if r.config_id == run.configs[0].id}
    others = [r for r in results if r.config_id == run.configs[1].id]
    assert all(r.judgement is None for r in reference.values())
    for result in others:
        j = result.judgement
        assert j is not None and [o["order"] for o in j["orders"]] == list(ORDERS)
        if result.example_index in judged_before:
            assert j == judged_before[result.example_index]
        ref_first, this_first = (o["prompt"] for o in j["orders"])
        ref, this = reference[result.example_index].output.strip(), result.output.strip()
        # The exact prompts: the reference's answer is A in the first order, B in the second.
        assert f"Answer A: {ref}" in ref_first and f"Answer B: {this}" in ref_first
        assert f"Answer A: {this}" in this_first and f"Answer B: {ref}" in this_first
        for order in j["orders"]:
            logprobs = [s["logprob"] for s in order["scores"]]
            total = sum(math.exp(lp) for lp in logprobs)
            assert [s["p"] for s in order["scores"]] == pytest.approx(
                [math.exp(lp) / total for lp in logprobs]
            )
            assert order["verdict"] == max(order["scores"], key=lambda s: s["p"])["choice"]
    # The stored log-probabilities are the judge's own: score one stored prompt again directly.
    backend = services.comparisons.backends.open(MODEL)
    first = others[0].judgement["orders"][0]
    again = list(backend.score([first["prompt"]], [["A", "B", "tie"]], "chat"))
    assert [s.logprob for s in again[0].scores] == pytest.approx(
        [s["logprob"] for s in first["scores"]], abs=1e-4
    )
    (summary,) = judge_summaries(services.store, run_id)
    outcomes = [r.judgement["outcome"] for r in others]
    assert (summary.wins, summary.ties, summary.losses) == tuple(
        outcomes.count(o) for o in ("win", "tie", "loss")
    )
    assert summary.consistency == pytest.approx(sum(r.judgement["consistent"] for r in others) / 3)


@pytest.mark.model
def test_a_pointwise_judge_agrees_with_the_gold_verdicts_as_counted(judged_services) -> None:
    seeds = needs.shared_data("self-instruct", "seed_tasks.jsonl")
    services = judged_services
    config = build_config(
        data=str(seeds),
        templates=["alpaca-instruction"],
        models=[MODEL],
        scoring="generate",
        metric="contains",
        max_new_tokens=8,
        limit=4,
        judge=MODEL,
        judge_template="judge-pass-fail",
    )
    events = list(services.comparisons.run(config))
    assert events[-1].status == "completed"
    results = services.store.comparison_results(events[-1].run_id)
    (summary,) = judge_summaries(services.store, events[-1].run_id)
    passed = [r.judgement["score"] >= 0.5 for r in results]
    assert summary.n == 4 and summary.pass_rate == pytest.approx(sum(passed) / 4)
    assert summary.agreement == pytest.approx(
        sum(p == r.correct for p, r in zip(passed, results, strict=True)) / 4
    )
    for result in results:
        j = result.judgement
        assert f"Answer to grade: {result.output.strip()}" in j["prompt"]
        assert f"Reference answer: {result.gold}" in j["prompt"]
        p_yes = next(s["p"] for s in j["scores"] if s["choice"] == "yes")
        assert j["score"] == pytest.approx(p_yes)  # yes = 1, no = 0
