"""Drive the real UI in Debian chromium: chat in the Playground, watch the answer stream in."""

from __future__ import annotations

import time

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.model]


def last_bot_text(page) -> str:
    bots = page.locator("#playground-chat .message.bot, #playground-chat [data-testid='bot']")
    if bots.count() == 0:
        return ""
    return bots.last.inner_text().strip()


def test_chat_in_the_playground_streams_and_logs(browser, studio_server, screenshot) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(studio_server.url)
    page.get_by_role("tab", name="Playground").click()
    page.locator("#playground-message textarea").fill(
        "Give me three tips for writing clear prompts."
    )
    page.locator("#playground-send").click()

    seen: list[str] = []
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        text = last_bot_text(page)
        if text and (not seen or seen[-1] != text):
            seen.append(text)
        stats = page.locator("#playground-stats").inner_text()
        if "finish:" in stats:
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"no finished answer in the UI; last text: {seen[-1:]}")
    final = last_bot_text(page)
    assert len(final) > 20
    assert len(seen) >= 3, f"the answer should stream in pieces, saw {len(seen)} states"
    assert "new tokens" in page.locator("#playground-stats").inner_text()

    # The exchange shows up in the History panel without a manual refresh.
    history = page.locator("#playground-history")
    page.wait_for_function(
        "() => document.querySelector('#playground-history').innerText.includes('three tips')",
        timeout=30_000,
    )
    assert "smollm2-135m-instruct" in history.inner_text()

    # Stop: a long answer ends early at the next token and is logged as stopped.
    page.locator("#playground-message textarea").fill("Write a very long story about a dragon.")
    page.locator("#playground-send").click()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        streaming = last_bot_text(page) not in ("", final)
        if streaming and "finish:" not in page.locator("#playground-stats").inner_text():
            break
        time.sleep(0.05)
    else:
        pytest.fail("the second answer never started streaming")
    page.locator("#playground-stop").click()
    page.wait_for_function(
        "() => document.querySelector('#playground-stats').innerText.includes('finish: stopped')",
        timeout=60_000,
    )

    # History: start a new chat, then select a past exchange to reload its conversation.
    page.get_by_role("button", name="New chat").click()
    page.wait_for_function(
        "() => !document.querySelector('#playground-chat').innerText.includes('three tips')"
    )
    history.get_by_text("Give me three tips", exact=False).last.click()
    page.wait_for_function(
        "() => document.querySelector('#playground-chat').innerText.includes('three tips')",
        timeout=30_000,
    )
    page.get_by_text("Reloaded conversation", exact=False).wait_for(timeout=30_000)

    screenshot(page, "playground.png")
    page.close()
