"""Open-ended answers: ROUGE-L, chrF and BLEU per example from the libraries the field uses, and a
real generation run on the Self-Instruct seed tasks scored by ROUGE-L and paired by permutation."""

from __future__ import annotations

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from studio.compare.config import build_config
from studio.compare.engine import RunFinished
from studio.compare.metrics import GRADED_METRICS, bleu, chrf, rouge_l
from studio.compare.paired import PERMUTATION
from studio.compare.summary import paired_summaries, summarize_run
from studio.services import create_services
from tests import needs


def test_rouge_l_is_the_longest_common_word_subsequence_by_hand() -> None:
    # LCS of "the cat sat on the mat" and "the cat was on the mat" is "the cat on the mat":
    # 5 of 6 words each way, F = 5/6.
    assert rouge_l("the cat sat on the mat", "the cat was on the mat") == pytest.approx(5 / 6)
    assert rouge_l("Running dogs", "the dog runs") == pytest.approx(
        rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
        .score("the dog runs", "Running dogs")["rougeL"]
        .fmeasure
    )
    assert rouge_l("completely different", "nothing shared here") == 0.0


@pytest.mark.parametrize("metric", [chrf, bleu])
def test_chrf_and_bleu_are_sacrebleu_sentence_scores_on_a_0_to_1_scale(metric) -> None:
    gold = "The quick brown fox jumps over the lazy dog."
    assert metric(gold, gold) == pytest.approx(1.0)
    assert metric("zzz qqq", gold) == pytest.approx(0.0, abs=0.05)
    close, far = "The quick brown fox jumped over a lazy dog.", "A dog sleeps."
    assert 0 < metric(far, gold) < metric(close, gold) < 1
    library = sacrebleu.sentence_chrf if metric is chrf else sacrebleu.sentence_bleu
    assert metric(close, gold) == pytest.approx(library(close, [gold]).score / 100)


def test_every_graded_metric_is_selectable_everywhere() -> None:
    from studio.cli.main import build_parser

    for name in GRADED_METRICS:
        assert build_parser().parse_args(["compare", "--metric", name]).metric == name
        assert build_config(data="x.csv", templates=["t"], models=["m"], metric=name).metric == name


@pytest.mark.model
def test_self_instruct_seed_tasks_scored_by_rouge_l_and_paired(settings) -> None:
    seeds = needs.shared_data("self-instruct", "seed_tasks.jsonl")
    services = create_services(settings)
    try:
        config = build_config(
            data=str(seeds),
            templates=["alpaca-instruction", "alpaca-instruction-completion"],
            models=["smollm2-135m-instruct"],
            scoring="generate",
            metric="rouge_l",
            max_new_tokens=24,
            limit=6,
        )
        events = list(services.comparisons.run(config))
        assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"
        run_id = events[-1].run_id
        results = services.store.comparison_results(run_id)
        assert len(results) == 12
        for result in results:  # every stored score is ROUGE-L of what was generated
            assert result.score == pytest.approx(rouge_l(result.prediction, result.gold))
            assert result.correct == (result.score >= 0.5)
        summaries = summarize_run(services.store, run_id)
        assert all(s.mean_score is not None and s.n == 6 for s in summaries)
        reference, paired = paired_summaries(services.store, run_id)
        assert reference is None and paired is not None
        assert paired.metric == "rouge_l" and paired.test == PERMUTATION and paired.n == 6
        by_config = {c.id: {} for c in services.store.get_comparison_run(run_id).configs}
        for result in results:
            by_config[result.config_id][result.example_index] = result.score
        first, second = (by_config[s.config_id] for s in summaries)
        expected = sum(second[i] - first[i] for i in first) / 6
        assert paired.difference.value == pytest.approx(expected)
    finally:
        services.close()
