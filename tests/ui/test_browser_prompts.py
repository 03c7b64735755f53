"""Drive the Prompts tab in Debian chromium: load a template, preview it on SST-2 with the real
model's chat template, save two versions under a throwaway name, diff them, delete it again.
The server's library is its own copy of the shipped one (in its temporary home)."""

from __future__ import annotations

import re
import uuid

import pytest

from tests import needs
from tests.conftest import SHARED_DATA

pytestmark = [pytest.mark.browser, pytest.mark.model]

SST2 = SHARED_DATA / "sst2" / "validation.tsv"
QUERY = 'template: "Review: {{ sentence }}"'
QUERY_V2 = 'template: "Review: {{ sentence }}\\nSentiment:"'


def wait_text(page, selector: str, text: str, timeout: float = 30_000) -> str:
    """Wait until the element's visible text contains `text`; returns that text."""
    page.wait_for_function(
        "([sel, want]) => (document.querySelector(sel)?.innerText || '').includes(want)",
        arg=[selector, text],
        timeout=timeout,
    )
    return str(page.locator(selector).inner_text())


def replace_editor_text(page, text: str) -> None:
    page.locator("#prompts-editor .cm-content").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def submit_field(page, selector: str, value: str) -> None:
    field = page.locator(selector).first
    field.fill(value)
    field.press("Enter")


def choose(page, dropdown: str, option: str) -> None:
    page.locator(f"{dropdown} input").click()
    page.get_by_role("option", name=option, exact=False).first.click()


def test_edit_preview_version_diff_and_delete_a_template(
    browser, studio_server, screenshot
) -> None:
    needs.shared_data("sst2", SST2.name)
    name = f"browser-test-{uuid.uuid4().hex[:8]}"
    library = studio_server.library  # a copy in the server's home: saving never touches prompts/
    original = (library / "sst2-sentiment.yaml").read_text(encoding="utf-8")
    assert QUERY in original
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(studio_server.url)
        page.get_by_role("tab", name="Prompts").click()
        page.locator("#prompts-library").get_by_text("sst2-sentiment", exact=True).click()
        wait_text(page, "#prompts-loaded", "sst2-sentiment")
        wait_text(page, "#prompts-editor", "name: sst2-sentiment")

        # Preview on SST-2 with 2 shots, through the model's chat template.
        submit_field(page, "#prompts-data input, #prompts-data textarea", str(SST2))
        submit_field(page, "#prompts-k input[type=number]", "2")
        wait_text(page, "#prompts-preview-status", "2 shots")
        page.locator("#prompts-preview").click()
        tokens = wait_text(page, "#prompts-tokens", "tokens for", timeout=180_000)
        assert "smollm2-135m-instruct" in tokens
        # The element may still carry Gradio's pending timer text ("0.0s") next to the count.
        count = re.search(r"(\d+) tokens for", tokens)
        assert count is not None and int(count.group(1)) > 20
        text = page.locator("#prompts-preview-text").inner_text()
        assert "<|im_start|>user" in text and "Review:" in text
        assert text.count("<|im_start|>assistant") == 3  # two shots' answers, then the query's
        assert page.locator("#prompts-answer textarea, #prompts-answer input").first.input_value()
        assert "Review:" in page.locator("#prompts-fewshot").inner_text()

        # Save under a throwaway name: v1; the live preview follows an edit; save again: v2.
        edited = original.replace("name: sst2-sentiment", f"name: {name}").replace(
            "description: Sentiment", "description: Browser test copy. Sentiment"
        )
        replace_editor_text(page, edited)
        wait_text(page, "#prompts-validation", f"valid · {name}")
        page.locator("#prompts-save").click()
        wait_text(page, "#prompts-save-status", f"saved {name} v1")
        assert (library / f"{name}.yaml").is_file()
        wait_text(page, "#prompts-library", name)

        replace_editor_text(page, edited.replace(QUERY, QUERY_V2))
        wait_text(page, "#prompts-preview-text", "Sentiment:")
        page.locator("#prompts-save").click()
        wait_text(page, "#prompts-save-status", f"saved {name} v2")
        page.locator("#prompts-save").click()
        wait_text(page, "#prompts-save-status", "unchanged — same as v2")

        # The two newest versions are diffed at once; choosing other versions re-diffs.
        diff = wait_text(page, "#prompts-diff", f"+++ {name} v2")
        # Stored versions are canonical YAML: the two-line template became a block scalar.
        assert "-template: 'Review: {{ sentence }}'" in diff
        assert "+template: |-" in diff and "+  Sentiment:" in diff
        assert "v1" in page.locator("#prompts-versions").inner_text()
        choose(page, "#prompts-diff-to", "v1")
        wait_text(page, "#prompts-diff", "v1 and v1 have the same content")
        choose(page, "#prompts-diff-to", "v2")
        wait_text(page, "#prompts-diff", f"+++ {name} v2")

        page.locator("#prompts-editor").scroll_into_view_if_needed()
        screenshot(page, "prompts.png")

        # Delete needs the confirmation tick; then the file and both versions go.
        page.locator("#prompts-delete").click()
        page.get_by_text("Tick 'Yes, delete'", exact=False).first.wait_for(timeout=30_000)
        assert (library / f"{name}.yaml").is_file()
        page.locator("#prompts-delete-confirm input").check()
        page.locator("#prompts-delete").click()
        status = wait_text(page, "#prompts-manage-status", f"deleted {name}")
        assert "library file removed, 2 stored versions deleted" in status
        assert not (library / f"{name}.yaml").exists()
        page.wait_for_function(
            "(n) => !document.querySelector('#prompts-library').innerText.includes(n)", arg=name
        )
    finally:
        page.close()
