"""Contextual calibration (Zhao et al., 2021): the prior by hand, the calibrated decision by hand,
and a real case with label bias — the studio's own support tickets, where SmolLM2 at 0 shots
answers one team for nearly every ticket — in which dividing out the prior changes accuracy,
stored with its prompts, exported with the run and kept by a resume."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from studio.compare.config import CompareConfigError, build_config
from studio.compare.engine import RunFinished
from studio.compare.metrics import calibrated_prediction, calibration_prior
from studio.compare.summary import summarize_run
from studio.experiments.bundle import export_bundle
from studio.experiments.refs import RunRef
from studio.services import create_services
from studio.settings import load_settings
from tests.conftest import ROOT


def test_the_prior_is_the_mean_of_each_inputs_normalised_probabilities() -> None:
    logprobs = [[math.log(0.3), math.log(0.1)], [math.log(0.2), math.log(0.2)]]
    # input 1: 0.75 / 0.25; input 2: 0.5 / 0.5 → mean 0.625 / 0.375
    assert calibration_prior(logprobs) == pytest.approx([0.625, 0.375])
    with pytest.raises(ValueError, match="at least one"):
        calibration_prior([])


def test_the_calibrated_choice_divides_by_the_prior() -> None:
    scores = [math.log(0.6), math.log(0.4)]
    assert calibrated_prediction(scores, [0.5, 0.5]) == 0  # a flat prior changes nothing
    assert calibrated_prediction(scores, [0.8, 0.2]) == 1  # 0.6/0.8 = 0.75 < 0.4/0.2 = 2
    assert calibrated_prediction(scores, [0.8, 0.0]) == 1  # a zero prior is floored, not nan
    with pytest.raises(ValueError, match="prior over 3 choices"):
        calibrated_prediction(scores, [0.2, 0.3, 0.5])


@pytest.mark.parametrize(
    ("settings", "says"),
    [({"scoring": "generate"}, "scoring: loglik"), ({"selection": "similar"}, "'similar'")],
)
def test_calibration_is_refused_where_it_means_nothing(settings: dict, says: str) -> None:
    with pytest.raises(CompareConfigError, match=says):
        build_config(data="x.csv", templates=["t"], models=["m"], calibrate=True, **settings)


TICKETS = ROOT / "studio" / "samples" / "tickets-test.csv"


@pytest.mark.model
def test_label_bias_on_the_sample_tickets_is_divided_out(settings, tmp_path: Path) -> None:
    services = create_services(settings)
    try:
        config = build_config(
            data=str(TICKETS),
            templates=["support-tickets"],
            models=["smollm2-135m-instruct"],
            calibrate=True,
        )
        events = list(services.comparisons.run(config))
        assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"
        run_id = events[-1].run_id
        run = services.store.get_comparison_run(run_id)
        [summary] = summarize_run(services.store, run_id)
        calibration = run.configs[0].calibration
        results = services.store.comparison_results(run_id)
    finally:
        services.close()
    assert calibration is not None and calibration["inputs"] == ["N/A", "", "[MASK]"]
    assert len(calibration["prompts"]) == 3 and "N/A" in calibration["prompts"][0]
    choices = [c["choice"] for c in results[0].choice_scores]
    prior = dict(zip(choices, calibration["prior"], strict=True))
    assert summary.prior == pytest.approx(prior) and sum(prior.values()) == pytest.approx(1)

    # Why it matters here: the raw answers pile onto one team, and so does the prior.
    raw = Counter(r.prediction for r in results)
    favourite, count = raw.most_common(1)[0]
    assert count >= 0.75 * len(results), raw
    assert max(prior, key=prior.get) == favourite
    # Calibrated verdicts, recomputed here from the stored scores and prior, are the summary's,
    # spread over more teams, and the accuracy moves.
    calibrated = [
        choices[
            calibrated_prediction([c["logprob"] for c in r.choice_scores], calibration["prior"])
        ]
        for r in results
    ]
    assert summary.calibrated.value == pytest.approx(
        sum(p == r.gold for p, r in zip(calibrated, results, strict=True)) / len(results)
    )
    assert Counter(calibrated).most_common(1)[0][1] < count
    assert summary.calibrated.value != summary.accuracy.value

    # The prior travels with the run: in a bundle, and in `studio runs export` lineage.
    bundle = tmp_path / "run.zip"
    services = create_services(settings)
    try:
        export_bundle(services.store, [RunRef("comparison", run_id)], bundle)
        target = create_services(
            load_settings(home=tmp_path / "other", offline=True, adapters_dir=tmp_path / "a")
        )
        try:
            target.experiments.import_bundle(bundle)
            [imported] = target.store.list_comparison_runs()
            assert imported.configs[0].calibration == calibration
        finally:
            target.close()
    finally:
        services.close()
    exported = tmp_path / "runs.json"
    env = {**os.environ, "STUDIO_HOME": str(settings.home), "STUDIO_OFFLINE": "1"}
    studio = str(Path(sys.executable).with_name("studio"))
    done = subprocess.run(
        [studio, "runs", "export", f"c{run_id}", "--format", "json", "--output", str(exported)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lineage = json.loads(exported.read_text())["runs"][0]["lineage"]
    assert lineage["calibrations"]["C1"]["prior"] == calibration["prior"]
