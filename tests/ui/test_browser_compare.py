"""Drive the Compare tab in Debian chromium: set up a 2-config grid, run it, read its results."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import needs
from tests.compare.test_tasks import write_task
from tests.conftest import SHARED_DATA
from tests.ui.pages import text_of

pytestmark = [pytest.mark.browser, pytest.mark.model]

SST2 = SHARED_DATA / "sst2"
CI = r"\d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]"


def fill_path(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id}").locator("textarea, input").first
    box.fill(value)
    box.press("Enter")


def test_compare_tab_runs_a_grid_and_shows_its_results(
    browser, studio_server, screenshot, tmp_path: Path
) -> None:
    needs.shared_data("sst2", "validation.tsv")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(studio_server.url)
    page.get_by_role("tab", name="Compare").click()

    # An uploaded file that cannot be read: the error names the file and the line.
    bad = tmp_path / "broken.csv"
    bad.write_text("text,label\nfine,1\nnot,fine,at all\n", encoding="utf-8")
    page.locator("#compare-data-upload").locator("xpath=..").locator(
        "input[type=file]"
    ).set_input_files(bad)
    page.get_by_text("broken.csv: line 3: expected 2 fields", exact=False).first.wait_for()

    # Data and shot pool: each shows its size, columns and first rows once loaded.
    fill_path(page, "compare-data-path", str(SST2 / "validation.tsv"))
    page.wait_for_function(f"{text_of('#compare-data-info')}.includes('872 rows')")
    assert "sentence" in page.locator("#compare-data-info").inner_text()
    page.locator("#compare-data-preview").get_by_text("charming and often affecting").wait_for()
    fill_path(page, "compare-pool-path", str(SST2 / "validation.tsv"))
    page.wait_for_function(f"{text_of('#compare-pool-warning')}.includes('evaluation data file')")

    page.locator("#compare-templates input").click()
    page.get_by_role("option", name="sst2-sentiment-completion", exact=True).click()
    page.keyboard.press("Escape")
    assert "smollm2-135m-instruct" in page.locator("#compare-models").inner_text()
    page.locator("#compare-shots").locator("textarea, input").first.fill("0,2")
    page.locator("#compare-limit input").fill("8")

    # The same file as data and shot pool is refused before anything is stored.
    page.locator("#compare-start").click()
    page.get_by_text("same file", exact=False).first.wait_for(timeout=30_000)
    page.wait_for_function("() => !document.querySelector('#compare-start').disabled")

    fill_path(page, "compare-pool-path", str(SST2 / "train.tsv"))
    page.wait_for_function(f"{text_of('#compare-pool-info')}.includes('rows')")
    page.wait_for_function(f"!{text_of('#compare-pool-warning')}.includes('evaluation data')")
    page.locator("#compare-start").click()

    # Rows stream in; then the summary shows both configurations with their intervals.
    page.wait_for_function(f"{text_of('#compare-live')}.includes('C1')", timeout=180_000)
    page.wait_for_function(
        f"() => ({text_of('#compare-summary')}.match(/{CI}/g) || []).length >= 4",
        timeout=180_000,
    )
    summary = page.locator("#compare-summary").inner_text()
    assert "C1" in summary and "C2" in summary and "sst2-sentiment-completion@v1" in summary
    status = page.locator("#compare-status").inner_text()
    first_run = re.search(r"Run #(\d+) completed: 16/16 rows", status)
    assert first_run, status
    assert f"Run #{first_run[1]} · completed" in page.locator("#compare-run-info").inner_text()
    assert "16 / 16 rows" in page.locator("#compare-progress").inner_text()
    assert page.locator("#compare-chart svg rect.cmp-bar").count() == 2
    assert page.locator("#compare-chart svg line.cmp-ci").count() == 2
    assert "completed" in page.locator("#compare-past-runs").inner_text()

    # Paired with the reference: C1 is the reference, C2 shows its difference and McNemar's p;
    # picking C2 as the reference turns it round.
    assert "Δ vs C1 [95% CI]" in summary and "reference" in summary
    assert re.search(r"[+-]\d\.\d{3} \[[+-]\d\.\d{3}, [+-]\d\.\d{3}\] \(accuracy\)", summary)
    assert "McNemar p=" in summary
    page.locator("#compare-reference input").click()
    page.get_by_role("option", name="C2", exact=True).click()
    page.wait_for_function(f"{text_of('#compare-summary')}.includes('Δ vs C2')")
    turned = page.locator("#compare-summary").inner_text()
    # Rows in grid order: C1 (now paired with C2, so it carries a p-value) before C2, the reference.
    assert turned.index("McNemar p=") < turned.index("reference")

    # The grid: filter, then open one cell's exact prompt and choice scores.
    page.locator("#compare-grid-filter").get_by_text("failures", exact=True).click()
    page.wait_for_function(f"{text_of('#compare-grid-note')}.includes('(failures)')")
    page.locator("#compare-grid-filter").get_by_text("all", exact=True).click()
    page.wait_for_function(f"{text_of('#compare-grid-note')}.includes('8 of 8 examples (all)')")
    page.locator("#compare-grid [data-testid='cell-0-4']").click()  # example 0, config C2
    page.wait_for_function(f"{text_of('#compare-cell-prompt')}.includes('Sentiment:')")
    assert "C2" in page.locator("#compare-cell-info").inner_text()
    assert "positive" in page.locator("#compare-cell-scores").inner_text()

    page.locator("#compare-cell-prompt").scroll_into_view_if_needed()
    screenshot(page, "compare.png")

    # Stop: a long run ends at the next batch, keeps its rows and is listed as stopped.
    page.locator("#compare-shots").locator("textarea, input").first.fill("0")
    page.locator("#compare-limit input").fill("120")
    page.locator("#compare-start").click()
    page.wait_for_function(
        f"/[1-9][0-9]* \\/ 120 rows/.test({text_of('#compare-progress')})", timeout=180_000
    )
    page.locator("#compare-stop").click()
    page.wait_for_function(f"/Run #[0-9]+ stopped/.test({text_of('#compare-status')})")
    stopped = re.search(r"Run #(\d+) stopped", page.locator("#compare-status").inner_text())
    assert stopped and stopped[1] != first_run[1]
    assert f"Run #{stopped[1]} · stopped" in page.locator("#compare-run-info").inner_text()
    page.wait_for_function(f"{text_of('#compare-past-runs')}.includes('stopped')")

    # Resume: only the missing rows are scored, then the run is complete.
    page.locator("#compare-resume").click()
    done = f"Run #{stopped[1]} completed: 120/120"
    page.wait_for_function(f"{text_of('#compare-status')}.includes('{done}')", timeout=300_000)
    assert f"Run #{stopped[1]} · completed" in page.locator("#compare-run-info").inner_text()
    assert not page.locator("#compare-resume").is_visible()

    # Past runs: reopen the first run from the list.
    ids = page.locator("#compare-past-runs [role='gridcell'][data-col='0']")
    ids.filter(has_text=re.compile(rf"^\s*{first_run[1]}\s*$")).click()
    reopened = f"Run #{first_run[1]} · completed"
    page.wait_for_function(f"{text_of('#compare-run-info')}.includes('{reopened}')")
    assert page.locator("#compare-chart svg line.cmp-ci").count() == 2

    # An lm-evaluation-harness task fills the form and puts its template in the library.
    task = write_task(tmp_path)
    page.locator("#compare-task-path textarea, #compare-task-path input").first.fill(str(task))
    page.locator("#compare-task-load").click()
    page.wait_for_function(f"{text_of('#compare-task-info')}.includes('lm-eval-tiny_sentiment')")
    assert "saved lm-eval-tiny_sentiment v1" in page.locator("#compare-task-info").inner_text()
    data_box = page.locator("#compare-data-path").locator("textarea, input").first
    assert data_box.input_value() == str(tmp_path / "valid.csv")
    assert "lm-eval-tiny_sentiment" in page.locator("#compare-templates").inner_text()
    assert (studio_server.library / "lm-eval-tiny_sentiment.yaml").is_file()
    page.close()


def choose(page, elem_id: str, option: str) -> None:
    """Pick `option` in the dropdown `elem_id`."""
    page.locator(f"#{elem_id} input").click()
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")


def test_a_pairwise_judged_run_shows_win_tie_loss_and_opens_its_judge_prompts(
    browser, studio_server
) -> None:
    seed_tasks = needs.shared_data("self-instruct", "seed_tasks.jsonl")
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(studio_server.url)
    page.get_by_role("tab", name="Compare").click()

    # Two configurations (0 and 1 shot) answer 2 free-form instructions in 8 tokens; a pairwise
    # judge (the bundled model) compares C2's answers with C1's in both orders.
    fill_path(page, "compare-data-path", str(seed_tasks))
    page.wait_for_function(f"{text_of('#compare-data-info')}.includes('175 rows')")
    choose(page, "compare-templates", "alpaca-instruction")
    page.locator("#compare-shots").locator("textarea, input").first.fill("0,1")
    page.locator("#compare-limit input").fill("2")
    page.locator("#compare-scoring").get_by_text("generate", exact=True).click()
    page.get_by_text("Generation scoring and advanced settings").click()
    page.locator("#compare-metric").get_by_text("rouge_l", exact=True).click()
    page.locator("#compare-max-new-tokens input").fill("8")
    page.get_by_text("Judge and repeated sampling (generate)").click()
    choose(page, "compare-judge", "smollm2-135m-instruct")
    choose(page, "compare-judge-template", "judge-pairwise")
    page.locator("#compare-judge-mode").get_by_text("pairwise", exact=True).click()
    page.locator("#compare-start").click()

    # Done only once the judge has graded both of C2's answers.
    page.wait_for_function(
        f"{text_of('#compare-status')}.includes('completed: 4/4 rows. Judge: 2/2 answers judged')",
        timeout=300_000,
    )
    assert "judging 2 / 2 answers" in page.locator("#compare-progress").inner_text()
    page.wait_for_function(f"{text_of('#compare-summary')}.includes('W/T/L vs C1')")
    summary = page.locator("#compare-summary").inner_text()
    assert "win rate [95% CI]" in summary and "position consistency" in summary
    cells = [line.strip() for line in summary.splitlines() if line.strip() not in ("", "\t")]
    c2 = cells[cells.index("C2") : cells.index("C2") + 14]  # one cell per line, 14 columns
    wins, ties, losses = map(int, c2[11].split("/"))
    assert wins + ties + losses == 2  # both examples, each judged in both orders
    assert re.fullmatch(CI, c2[12]) and c2[13] in ("0.00", "0.50", "1.00"), c2

    # C2's cell of example 0: the verdict in the grid, both judge prompts in the cell.
    verdict = page.locator("#compare-grid [data-testid='cell-0-4']").inner_text()
    assert re.search(r"⚖ (win|tie|loss)", verdict), verdict
    page.locator("#compare-grid [data-testid='cell-0-4']").click()
    judge_box = "document.querySelector('#compare-cell-judge textarea')?.value || ''"
    page.wait_for_function(f"({judge_box}).includes('order this-first')")
    judge = page.locator("#compare-cell-judge textarea").input_value()
    assert judge.index("order reference-first") < judge.index("order this-first")
    assert judge.count("Which answer follows the instruction better?") == 2
    assert "judge-pairwise" in page.locator("#compare-cell-info").inner_text()
    page.close()
