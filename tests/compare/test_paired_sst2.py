"""Paired differences on a real run: two SST-2 templates on SmolLM2, the stored per-example
verdicts recounted here, and McNemar's p-value and the paired interval checked against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from studio.compare.config import build_config
from studio.compare.engine import RunFinished
from studio.compare.summary import format_paired, paired_summaries, summarize_run
from studio.services import create_services
from tests import needs
from tests.compare.test_paired import scipy_paired_interval

pytestmark = pytest.mark.model

N = 48


@pytest.fixture
def run(settings):
    validation = needs.shared_data("sst2", "validation.tsv")
    services = create_services(settings)
    config = build_config(
        data=str(validation),
        templates=["sst2-sentiment", "sst2-sentiment-completion"],
        models=["smollm2-135m-instruct"],
        shots=[0],
        limit=N,
    )
    events = list(services.comparisons.run(config))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"
    yield services, events[-1].run_id
    services.close()


def test_two_templates_paired_difference_matches_scipy(run) -> None:
    services, run_id = run
    stored = services.store.get_comparison_run(run_id)
    first, second = sorted(stored.configs, key=lambda c: c.position)
    right: dict[int, dict[int, bool]] = {first.id: {}, second.id: {}}
    for result in services.store.comparison_results(run_id):
        right[result.config_id][result.example_index] = result.correct
    assert len(right[first.id]) == len(right[second.id]) == N
    a = np.array([right[first.id][i] for i in range(N)], dtype=float)
    b = np.array([right[second.id][i] for i in range(N)], dtype=float)
    only_second, only_first = int(((b == 1) & (a == 0)).sum()), int(((a == 1) & (b == 0)).sum())

    reference, paired = paired_summaries(services.store, run_id, reference=1)
    assert reference is None and paired is not None
    assert paired.n == N and paired.discordant == (only_second, only_first)
    assert paired.difference.value == pytest.approx(b.mean() - a.mean())
    expected_p = binomtest(only_second, only_second + only_first).pvalue
    assert paired.p_value == pytest.approx(expected_p)
    interval = scipy_paired_interval(b, a)
    assert paired.difference.low == pytest.approx(interval.low, abs=0.02)
    assert paired.difference.high == pytest.approx(interval.high, abs=0.02)

    # The other way round: the sign flips, the test and its p-value do not.
    flipped = paired_summaries(services.store, run_id, reference=2)[0]
    assert flipped is not None and flipped.discordant == (only_first, only_second)
    assert flipped.difference.value == pytest.approx(-paired.difference.value)
    assert flipped.p_value == pytest.approx(paired.p_value)
    text = format_paired(summarize_run(services.store, run_id), [reference, paired])
    assert f"discordant {only_second}/{only_first}" in text and "against C1" in text
