"""Drive the Start here tab in Debian chromium: run step 1 on the sample and read its results."""

from __future__ import annotations

import re

import pytest

from tests.ui.pages import text_of

pytestmark = [pytest.mark.browser, pytest.mark.model]

CI = r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]"


def test_start_here_runs_step_one_and_shows_where_to_find_it(
    browser, studio_server, screenshot
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(studio_server.url)
    # The first tab a newcomer sees: four steps, each with its command line.
    page.get_by_role("tab", name="Start here").click()
    for number in (1, 2, 3, 4):
        page.locator(f"#start-step-{number}").wait_for()
    assert "start-compare.yaml" in page.locator("#start-step-1").inner_text()
    assert "start-tune.yaml" in page.locator("#start-step-2").inner_text()
    # No adapter yet in this studio's home: step 3 waits for step 2.
    assert page.locator("#start-run-3").is_disabled()
    assert "No tuning run yet" in page.locator("#start-info-2").inner_text()

    page.locator("#start-run-1").click()
    page.wait_for_function(f"/rows/.test({text_of('#start-progress-1')})", timeout=300_000)
    page.wait_for_function(
        f"() => ({text_of('#start-results-1')}.match(/{CI}/g) || []).length >= 4",
        timeout=900_000,
    )
    results = page.locator("#start-results-1").inner_text()
    assert "smollm2-135m-instruct" in results and "72" in results
    status = page.locator("#start-status-1").inner_text()
    found = re.search(r"Run #(\d+) is stored", status)
    assert status.startswith("✓ Completed") and found, status
    assert "144 / 144 rows" in page.locator("#start-progress-1").inner_text()
    assert not page.locator("#start-run-1").is_disabled()

    # Step 4 lists what the loop stored: the run just finished.
    page.locator("#start-run-4").click()
    page.wait_for_function(f"{text_of('#start-stored')}.includes('start here')")
    assert "completed" in page.locator("#start-stored").inner_text()

    page.locator("#start-step-1").scroll_into_view_if_needed()
    screenshot(page, "start.png")
    page.close()
