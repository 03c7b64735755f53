"""The whole loop through the UI in Debian chromium, as a user walks it: write a template in the
Prompts tab, measure it in Compare, tune a small adapter on it in Tune, find both runs in
Experiments, compare them there and export them.

The server is a real `python app.py` with its own home, adapters folder and copy of the template
library (all temporary); the new template is saved into that copy, never into studio/prompts/.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.ui.conftest import Server, run_studio
from tests.ui.pages import click_row, list_ids, text_of

pytestmark = [pytest.mark.browser, pytest.mark.model]

REVIEWS = ROOT / "studio" / "samples" / "reviews.csv"
JOB_TIMEOUT_MS = 600_000


@pytest.fixture(scope="module")
def loop_server(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("loop-server-home")
    with run_studio(home, model_home) as server:
        yield server


def wait_text(page, selector: str, text: str, timeout: float = 60_000) -> None:
    page.wait_for_function(f"{text_of(selector)}.includes({text!r})", timeout=timeout)


def fill(page, elem_id: str, value: str, key: str = "Tab") -> None:
    box = page.locator(f"#{elem_id}").locator("textarea, input").first
    box.fill(value)
    box.press(key)


def pick(page, dropdown: str, option: str) -> None:
    page.locator(f"#{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def write_template(page, library: Path, name: str) -> None:
    """Prompts tab: a new template, typed into the editor and saved as v1 into `library`."""
    source = (library / "reviews-sentiment.yaml").read_text(encoding="utf-8")
    text = source.replace("name: reviews-sentiment", f"name: {name}").replace(
        "Sentiment:", "Is this review positive or negative?"
    )
    page.get_by_role("tab", name="Prompts").click()
    page.locator("#prompts-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    wait_text(page, "#prompts-validation", f"valid · {name}")
    page.locator("#prompts-save").click()
    wait_text(page, "#prompts-save-status", f"saved {name} v1")
    assert (library / f"{name}.yaml").is_file()


def measure(page, name: str) -> str:
    """Compare tab: 0 vs 2 shots of the new template on the sample reviews; the run's id."""
    page.get_by_role("tab", name="Compare").click()
    fill(page, "compare-data-path", str(REVIEWS), key="Enter")
    wait_text(page, "#compare-data-info", "60 rows")
    page.locator("#compare-templates-refresh").click()
    pick(page, "compare-templates", name)
    fill(page, "compare-shots", "0,2")
    fill(page, "compare-limit", "8")
    fill(page, "compare-pool-size", "20")
    page.locator("#compare-start").click()
    page.wait_for_function(
        f"/Run #[0-9]+ completed/.test({text_of('#compare-status')})", timeout=300_000
    )
    found = re.search(r"Run #(\d+) completed", page.locator("#compare-status").inner_text())
    assert found is not None
    assert f"{name}@v1" in page.locator("#compare-summary").inner_text()
    return found[1]


def tune(page, name: str) -> str:
    """Tune tab: a 3-step QLoRA adapter in the template's format; waits for it to complete."""
    page.get_by_role("tab", name="Tune").click()
    fill(page, "tune-name", name)
    fill(page, "tune-data", str(REVIEWS))
    page.locator("#tune-templates-refresh").click()
    pick(page, "tune-template", name)
    for elem_id, value in (
        ("tune-limit", "20"), ("tune-max-steps", "3"), ("tune-batch-size", "4"),
        ("tune-max-length", "96"), ("tune-eval-split", "0.2"), ("tune-eval-steps", "3"),
    ):  # fmt: skip
        fill(page, elem_id, value)
    page.locator("#tune-launch").click()
    page.wait_for_function(
        f"/Run #[0-9]+ (started|queued)/.test({text_of('#tune-status')})", timeout=180_000
    )
    run_id = page.locator("#tune-status").inner_text().split("#")[1].split(" ")[0]
    page.wait_for_function(
        f"{text_of('#tune-run-info')}.includes('Run #{run_id}')"
        f" && {text_of('#tune-jobs')}.includes('completed')",
        timeout=JOB_TIMEOUT_MS,
        polling=1000,
    )
    wait_text(page, "#tune-adapters", name)
    return run_id


def test_the_whole_loop_from_a_new_template_to_an_exported_comparison(
    browser, loop_server: Server, artifacts: Path
) -> None:
    name = f"loop-{uuid.uuid4().hex[:8]}"
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    try:
        page.goto(loop_server.url)
        write_template(page, loop_server.library, name)
        comparison = f"c{measure(page, name)}"
        tuning = f"t{tune(page, name)}"
        page.screenshot(path=str(artifacts / "loop-tune.png"), full_page=True)

        # Experiments: both runs are listed, with the template version they used.
        page.get_by_role("tab", name="Experiments").click()
        page.locator("#exp-refresh").click()
        page.wait_for_function(
            f"{text_of('#exp-list')}.includes('{comparison}')"
            f" && {text_of('#exp-list')}.includes('{tuning}')",
            timeout=60_000,
        )
        assert f"{name}@v1" in page.locator("#exp-list").inner_text()
        for ref in (comparison, tuning):
            click_row(page, ref)
            wait_text(page, "#exp-selection", f"{ref} ·")
        assert {comparison, tuning} <= set(list_ids(page))

        # Compare the two side by side: both in the metrics, the tuning run's loss curve drawn.
        page.get_by_role("tab", name="Compare", exact=True).nth(1).click()
        page.locator("#exp-compare").click()
        wait_text(page, "#exp-compare-note", "Comparing")
        metrics = page.locator("#exp-metrics").inner_text()
        assert comparison in metrics and tuning in metrics
        assert page.locator("#exp-loss polyline.exp-line").count() == 1
        page.screenshot(path=str(artifacts / "loop-experiments.png"), full_page=True)

        # Export both as JSONL: the comparison's example rows, each with its exact prompt.
        page.get_by_role("tab", name="Export & import").click()
        page.locator("#exp-format input[value='jsonl']").check()
        page.locator("#exp-export").click()
        wait_text(page, "#exp-export-note", "Exported")
        with page.expect_download() as download:
            page.locator("#exp-download a").first.click()
        lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
        rows = [json.loads(line) for line in lines]
        compared = [row for row in rows if row["run"] == comparison]
        assert len(compared) == 16  # 8 examples × 2 shot counts
        assert all(name in row["label"] and row["prompt"] for row in compared)
        assert {row["run"] for row in rows} == {comparison, tuning}
    finally:
        page.close()
