"""Drive the Experiments tab in Debian chromium: filter the list, open a run, tag it, compare
runs (metrics, config diff, loss curves, agreement), export the selection and download it.

The store holds two real comparison runs of SmolLM2 on the project's sample reviews (made with
the engine before the server starts) and two tuning runs recorded through the store, as the
training worker records them; the server is the real `python app.py` on that home.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.compare.config import build_config
from studio.services import create_services
from studio.settings import load_settings
from studio.store import MetricPoint
from tests.conftest import ROOT
from tests.ui.conftest import Server, run_studio
from tests.ui.pages import click_row, list_ids, text_of

pytestmark = [pytest.mark.browser, pytest.mark.model]

REVIEWS = ROOT / "studio" / "samples" / "reviews.csv"


def _populate(home: Path) -> None:
    settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
    services = create_services(settings)
    try:
        # Both need a shot pool, so both evaluate the same held-out rows (same dataset hash).
        for name, shots in (("three-shot", [3]), ("shots sweep", [0, 3])):
            config = build_config(
                name=name, data=str(REVIEWS), pool_size=20, templates=["reviews-sentiment"],
                models=["smollm2-135m-instruct"], shots=shots, seeds=[1], limit=8,
            )  # fmt: skip
            *_, finished = services.comparisons.run(config)
            assert finished.status == "completed"
        store = services.store
        for name, losses in (("lora-r8", [2.4, 1.9, 1.5, 1.3]), ("lora-r16", [2.4, 1.7, 1.2, 0.9])):
            run = store.create_tuning_run(
                name=name, config={"name": name, "lora": {"r": int(name[6:])}},
                base_model="smollm2-135m-instruct", work_dir=str(home / name),
                adapter_path=str(home / "adapters" / name),
            )  # fmt: skip
            points = [MetricPoint(step=i + 1, loss=v) for i, v in enumerate(losses)]
            store.add_metric_points(run.id, points)
            store.finish_tuning_run(run.id, "completed", summary={"train_loss": losses[-1]})
    finally:
        services.close()


@pytest.fixture(scope="module")
def exp_server(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("experiments-server-home")
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    os.symlink(model_home / "models", home / "models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        _populate(home)
    with run_studio(home) as server:
        yield server


def test_experiments_tab_filters_opens_compares_and_exports(
    browser, exp_server: Server, screenshot
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1100}, accept_downloads=True)
    page.goto(exp_server.url)
    page.get_by_role("tab", name="Experiments").click()
    page.wait_for_function(f"{text_of('#exp-list-note')}.includes('4 shown')", timeout=60_000)
    assert list_ids(page) == ["t2", "t1", "c2", "c1"]
    assert re.search(
        r"acc \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", page.locator("#exp-list").inner_text()
    )

    # Filter: only tuning runs, then a free-text search.
    page.locator("#exp-kind input").click()
    page.get_by_role("option", name="tuning", exact=True).click()
    page.wait_for_function(f"{text_of('#exp-list-note')}.includes('2 shown')")
    assert list_ids(page) == ["t2", "t1"]
    page.locator("#exp-kind input").click()
    page.get_by_role("option", name="comparison", exact=True).click()
    search = page.locator("#exp-search textarea, #exp-search input").first
    search.fill("sweep")
    search.press("Enter")
    page.wait_for_function(f"{text_of('#exp-list-note')}.includes('1 shown')")
    assert list_ids(page) == ["c2"]

    # Open it: lineage, metrics with CIs, per-example rows; then tag it.
    click_row(page, "c2")
    page.wait_for_function(f"{text_of('#exp-detail')}.includes('c2 · shots sweep')")
    detail = page.locator("#exp-detail").inner_text()
    assert "template: reviews-sentiment@v1" in detail and "dataset: reviews[eval]" in detail
    assert "C2" in page.locator("#exp-summary").inner_text()
    examples = page.locator("#exp-examples").inner_text()
    assert examples.count("✓") + examples.count("✗") == 16
    box = page.locator("#exp-annotation textarea, #exp-annotation input").first
    box.fill("baseline")
    page.locator("#exp-add-tag").click()
    page.wait_for_function(f"{text_of('#exp-notice')}.includes('Tagged c2: baseline')")
    page.wait_for_function(f"{text_of('#exp-detail')}.includes('baseline')")

    # Every run back in the list; select the other comparison and both tuning runs too.
    search.fill("")
    page.locator("#exp-kind input").click()
    page.get_by_role("option", name="", exact=True).first.click()
    page.wait_for_function(f"{text_of('#exp-list-note')}.includes('4 shown')")
    for ref in ("c1", "t1", "t2"):
        click_row(page, ref)
        page.wait_for_function(f"{text_of('#exp-selection')}.includes('{ref} ·')")

    # Compare: metrics side by side, differences-only diff, loss curves, agreement.
    page.get_by_role("tab", name="Compare", exact=True).nth(1).click()
    page.locator("#exp-compare").click()
    page.wait_for_function(f"{text_of('#exp-compare-note')}.includes('Comparing')")
    metrics = page.locator("#exp-metrics").inner_text()
    assert all(ref in metrics for ref in ("c1", "c2", "t1", "t2"))
    diff = page.locator("#exp-diff").inner_text()
    assert '"lora-r8"' in diff and "shots" in diff  # differences only: names, settings
    agreement = page.locator("#exp-agreement").inner_text()
    assert "8 shared examples" in agreement and "same verdict on" in agreement
    # Paired with the first run over the same examples: difference, interval, McNemar p.
    assert (
        "Paired with" in agreement and "McNemar" in agreement and "p=1, discordant 0/0" in agreement
    )
    # Overlaid loss curves: one line per tuning run, named in the legend.
    assert page.locator("#exp-loss polyline.exp-line").count() == 2
    assert "t1 lora-r8" in page.locator("#exp-loss").inner_text()
    page.locator("#exp-metrics").scroll_into_view_if_needed()
    screenshot(page, "experiments.png")

    # Export the selection as CSV and download it.
    page.get_by_role("tab", name="Export & import").click()
    page.locator("#exp-export").click()
    page.wait_for_function(f"{text_of('#exp-export-note')}.includes('Exported')")
    assert "Exported 32 rows of 4 run(s) as CSV" in page.locator("#exp-export-note").inner_text()
    with page.expect_download() as download:
        page.locator("#exp-download a").first.click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("run,config,label,model,template")
    assert "prompt" in text.splitlines()[0].split(",")
    page.close()
