"""Small page helpers the browser tests share (Playwright pages of a running studio)."""

from __future__ import annotations

import re

EXPERIMENT_IDS = "#exp-list [role='gridcell'][data-col='0']"


def text_of(selector: str) -> str:
    """A JavaScript expression: the visible text of the first element matching `selector`."""
    return f"(document.querySelector('{selector}')?.innerText || '')"


def list_ids(page) -> list[str]:
    """The run ids (c1, t2, a3, ...) in the Experiments list, top to bottom."""
    return [cell.strip() for cell in page.locator(EXPERIMENT_IDS).all_inner_texts()]


def click_row(page, ref: str) -> None:
    """Select the Experiments list row of run `ref`."""
    page.locator(EXPERIMENT_IDS).filter(has_text=re.compile(rf"^\s*{ref}\s*$")).click()
