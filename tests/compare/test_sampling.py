"""Repeated sampling: unbiased pass@k against the binomial formula, the majority vote, and a real
sampled run on the Self-Instruct seed tasks whose stored samples are seeded (the same run twice
gives the same samples), whose rows summarize their samples, and whose summary recomputes from
what is stored."""

from __future__ import annotations

from math import comb

import pytest

from studio.compare.config import build_config
from studio.compare.metrics import consistency, majority_answer, pass_at_k
from studio.compare.summary import paired_summaries, primary_metric, sampling_summaries
from studio.services import create_services
from tests import needs

MODEL = "smollm2-135m-instruct"


@pytest.mark.parametrize("n", [1, 2, 5, 10, 16])
def test_pass_at_k_is_the_unbiased_estimator(n) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(1 - comb(n - c, k) / comb(n, k))


def test_majority_vote_and_consistency_normalise_answers() -> None:
    answers = ["Paris.", "paris", "Lyon", "The Paris"]
    assert majority_answer(answers) == "Paris."  # first written form of the most common answer
    assert consistency(answers) == 0.75
    assert majority_answer(["a", "b"]) == "a"  # a tie goes to the first seen


def test_a_sampled_run_is_judged_on_the_mean_over_samples() -> None:
    assert primary_metric("generate", {"metric": "exact", "samples": 4}) == ("pass@1", False)
    assert primary_metric("generate", {"metric": "rouge_l", "samples": 4})[1] is False
    assert primary_metric("generate", {"metric": "exact", "samples": 1}) == ("accuracy", True)


@pytest.fixture(scope="module")
def services(tmp_path_factory, model_home):
    from studio.settings import load_settings

    home = tmp_path_factory.mktemp("sampled")
    for item in model_home.iterdir():
        (home / item.name).symlink_to(item)
    services = create_services(load_settings(home=home, offline=True, adapters_dir=home / "a"))
    yield services
    services.close()


@pytest.mark.model
def test_a_sampled_run_stores_every_seeded_sample(services) -> None:
    seeds = needs.shared_data("self-instruct", "seed_tasks.jsonl")
    config = build_config(
        data=str(seeds),
        templates=["alpaca-instruction"],
        models=[MODEL],
        seeds=[0, 1],
        scoring="generate",
        metric="contains",
        samples=4,
        temperature=1.0,
        max_new_tokens=6,
        limit=3,
    )
    first = list(services.comparisons.run(config))[-1]
    again = list(services.comparisons.run(config))[-1]
    assert first.status == again.status == "completed"
    results = services.store.comparison_results(first.run_id)
    repeat = services.store.comparison_results(again.run_id)
    assert [r.samples for r in results] == [r.samples for r in repeat]  # seeded
    distinct = set()
    for row in results:
        assert [s["sample"] for s in row.samples] == [1, 2, 3, 4]
        assert row.output == row.samples[0]["output"]
        assert row.score == pytest.approx(sum(s["score"] for s in row.samples) / 4)
        assert row.prediction == majority_answer([s["prediction"] for s in row.samples])
        distinct.add(len({s["output"] for s in row.samples}))
    assert max(distinct) > 1  # at temperature 1 the samples differ
    run = services.store.get_comparison_run(first.run_id)
    summaries = sampling_summaries(services.store, first.run_id)
    assert [s.position for s in summaries] == [0, 1]
    for summary, cfg in zip(summaries, run.configs, strict=True):
        rows = [r for r in results if r.config_id == cfg.id]
        right = [sum(s["correct"] for s in r.samples) for r in rows]
        assert summary.pass_at.keys() == {1, 2, 4}
        for k, value in summary.pass_at.items():
            expected = sum(1 - comb(4 - c, k) / comb(4, k) for c in right) / len(rows)
            assert value == pytest.approx(expected)
        draws = [sum(r.samples[j]["score"] for r in rows) / len(rows) for j in range(4)]
        assert summary.per_draw.mean == pytest.approx(sum(draws) / 4)
    (_, paired) = paired_summaries(services.store, first.run_id)
    assert paired.metric == "pass@1" and paired.n == 3
