"""Drive the Tune tab in Debian chromium: a refused launch, then a tiny QLoRA job from the form to
a listed adapter, with the preview of the exact training strings and the live loss chart.

The server is the real `python app.py` with its own temporary home and adapters folder, shared by
this module's tests; each test checks what it queued against what was stored before it ran, so
the tests pass in any order. The job is a real worker process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.store import Store
from tests import needs
from tests.conftest import SHARED_DATA
from tests.ui.conftest import Server, run_studio
from tests.ui.pages import text_of

pytestmark = [pytest.mark.browser, pytest.mark.model]

TRAIN = SHARED_DATA / "sst2" / "train.tsv"
JOB_TIMEOUT_MS = 420_000  # ~1-2 min on an idle 2-core CPU; a busy machine takes longer


@pytest.fixture(scope="module")
def tune_server(tmp_path_factory: pytest.TempPathFactory, model_home: Path) -> Iterator[Server]:
    """`python app.py` with its own home and adapters folder (the adapters the job writes)."""
    home = tmp_path_factory.mktemp("tune-server-home")
    with run_studio(home, model_home) as server:
        yield server


def fill(page, elem_id: str, value: str) -> None:
    box = page.locator(f"#{elem_id}").locator("textarea, input").first
    box.fill(value)
    box.press("Tab")  # number fields commit their value on blur


def open_tune_tab(browser, server: Server):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.url)
    page.get_by_role("tab", name="Tune").click()
    return page


def choose_template(page, name: str) -> None:
    page.locator("#tune-template input").click()
    page.get_by_role("option", name=name, exact=True).click()
    page.keyboard.press("Escape")


def runs_in_store(server: Server) -> list:
    store = Store(f"sqlite:///{server.home / 'studio.db'}")
    try:
        return store.list_tuning_runs()
    finally:
        store.close()


def run_ids(server: Server) -> list[int]:
    """The ids of the server's stored tuning runs (what a test compares before and after)."""
    return [run.id for run in runs_in_store(server)]


def test_a_bad_setting_is_shown_in_the_status_box_and_nothing_is_queued(
    browser, tune_server: Server
) -> None:
    before = run_ids(tune_server)
    page = open_tune_tab(browser, tune_server)
    fill(page, "tune-name", "never-queued")
    fill(page, "tune-data", "/nonexistent/train.tsv")
    page.locator("#tune-check").click()
    # The first check may convert the model's tokenizer files on a fresh machine: allow for it.
    page.wait_for_function(f"{text_of('#tune-status')}.includes('does not exist')", timeout=180_000)
    status = page.locator("#tune-status").inner_text()
    assert "The data file cannot be read" in status and "Nothing was queued" in status
    assert page.locator("#tune-status [data-kind='error']").count() == 1
    page.locator("#tune-launch").click()  # Launch checks again: still refused
    page.wait_for_function(f"{text_of('#tune-status')}.includes('does not exist')")
    fill(page, "tune-batch-size", "0")  # refused before the engine: the message names it
    page.locator("#tune-check").click()
    page.wait_for_function(f"{text_of('#tune-status')}.includes('training.batch_size')")
    assert run_ids(tune_server) == before
    assert "never-queued" not in page.locator("#tune-jobs").inner_text()
    page.close()


def test_a_tiny_qlora_job_from_the_form_to_a_listed_adapter(
    browser, tune_server: Server, screenshot
) -> None:
    needs.shared_data("sst2", "train.tsv")
    before = run_ids(tune_server)
    page = open_tune_tab(browser, tune_server)
    fill(page, "tune-name", "tiny-sst2")
    assert page.locator("#tune-model input").input_value() == "smollm2-135m-instruct"
    assert page.locator("#tune-quantization input:checked").get_attribute("value") == "4bit"
    fill(page, "tune-data", str(TRAIN))
    choose_template(page, "sst2-sentiment")
    for elem_id, value in (
        ("tune-limit", "20"), ("tune-max-steps", "4"), ("tune-batch-size", "4"),
        ("tune-max-length", "128"), ("tune-eval-split", "0.2"), ("tune-eval-steps", "2"),
    ):  # fmt: skip
        fill(page, elem_id, value)

    # Check: the report, the memory estimate and the exact strings, answer highlighted.
    page.locator("#tune-check").click()
    page.locator("#tune-preview .tune-trained").first.wait_for(timeout=120_000)
    status = page.locator("#tune-status").inner_text()
    assert "Ready to launch: 16 train / 4 eval rows, 4 optimizer steps" in status
    trained = page.locator("#tune-preview .tune-seq .tune-trained").all_inner_texts()
    assert len(trained) == 3 and all(t.startswith(("positive", "negative")) for t in trained)
    masked = page.locator("#tune-preview .tune-seq .tune-masked").first.inner_text()
    assert "Classify the sentiment" in masked and masked.rstrip().endswith("assistant↵")
    report = page.locator("#tune-report").inner_text()
    assert "template 'sst2-sentiment'" in report and "Memory estimate" in report
    assert page.locator("#tune-report .tune-memory[data-fits='fits']").count() == 1
    assert run_ids(tune_server) == before  # Check queues nothing

    # Launch: the run is followed until it completes; charts, log and adapter appear.
    page.locator("#tune-launch").click()
    page.wait_for_function(f"/Run #[0-9]+ (started|queued)/.test({text_of('#tune-status')})")
    page.wait_for_function(
        f"{text_of('#tune-jobs')}.includes('completed')", timeout=JOB_TIMEOUT_MS, polling=1000
    )
    page.wait_for_function(f"{text_of('#tune-run-info')}.includes('adapters/tiny-sst2')")
    assert "4/4" in page.locator("#tune-jobs").inner_text()
    assert "step 4/4 · 100%" in page.locator("#tune-progress").inner_text()
    page.locator("#tune-plot-loss svg .mark-line path").first.wait_for(state="attached")
    page.locator("#tune-plot-eval-loss svg").first.wait_for(state="attached")
    page.wait_for_function(f"{text_of('#tune-adapters')}.includes('tiny-sst2')")
    assert "adapters/tiny-sst2" in page.locator("#tune-adapters").inner_text()
    log_text = page.locator("#tune-log textarea").input_value()
    assert "completed: adapter saved" in log_text
    assert (tune_server.adapters / "tiny-sst2" / "adapter_config.json").is_file()

    page.locator("#tune-plot-loss").scroll_into_view_if_needed()
    screenshot(page, "tune.png")
    page.close()


def test_stop_saves_the_adapter_and_resume_continues_the_run(browser, tune_server: Server) -> None:
    needs.shared_data("sst2", "train.tsv")
    page = open_tune_tab(browser, tune_server)
    fill(page, "tune-name", "stop-me")
    fill(page, "tune-data", str(TRAIN))
    choose_template(page, "sst2-sentiment")
    for elem_id, value in (
        ("tune-limit", "40"), ("tune-max-steps", "200"), ("tune-batch-size", "2"),
        ("tune-max-length", "128"), ("tune-eval-split", "0"),
    ):  # fmt: skip
        fill(page, elem_id, value)
    page.locator("#tune-launch").click()
    page.wait_for_function(f"/Run #[0-9]+ (started|queued)/.test({text_of('#tune-status')})")
    run_id = page.locator("#tune-status").inner_text().split("#")[1].split(" ")[0]

    def stop_when_running() -> None:
        page.wait_for_function(
            f"{text_of('#tune-run-info')}.includes('Run #{run_id} — stop-me')"
            f" && {text_of('#tune-run-info')}.includes('▶ running')"
            " && !document.querySelector('#tune-stop').disabled",
            timeout=JOB_TIMEOUT_MS,
        )
        page.locator("#tune-stop").click()
        page.wait_for_function(f"{text_of('#tune-run-notice')}.includes('stops at its next step')")
        page.wait_for_function(
            f"{text_of('#tune-run-info')}.includes('■ stopped')",
            timeout=JOB_TIMEOUT_MS,
            polling=1000,
        )

    stop_when_running()
    assert "use adapters/stop-me as a model" in page.locator("#tune-run-info").inner_text()
    page.wait_for_function(f"{text_of('#tune-adapters')}.includes('stop-me')")
    page.locator("#tune-resume").click()
    page.wait_for_function(f"{text_of('#tune-run-notice')}.includes('continues from its last')")
    stop_when_running()  # the resumed run trains again (from its checkpoint); stop it for good
    runs = runs_in_store(tune_server)
    assert [(r.name, r.status, r.resume) for r in runs if r.name == "stop-me"] == [
        ("stop-me", "stopped", True)
    ]
    page.close()
