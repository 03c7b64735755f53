"""What the Prompts tab shows, without gradio: the library and version tables, a version diff as
coloured lines, and the notes next to the editor and the preview."""

from __future__ import annotations

import html
from typing import Any

from studio.store import TemplateVersion

LIBRARY_COLUMNS = ["name", "mode", "description", "latest version"]
VERSION_COLUMNS = ["version", "hash", "saved (UTC)", "used by runs"]
NO_PREVIEW = ("", "", "", "")
FIX_TEMPLATE = "Fix the template to see the preview."


def version_rows(versions: list[TemplateVersion]) -> list[list[Any]]:
    return [
        [
            f"v{v.version}",
            v.content_hash[:12],
            v.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            v.used_by_runs,
        ]
        for v in versions
    ]


def version_choices(versions: list[TemplateVersion]) -> list[tuple[str, int]]:
    return [(f"v{v.version} · {v.content_hash[:8]}", v.version) for v in versions]


def diff_html(diff: str, old: int | None, new: int | None) -> str:
    """The diff as coloured lines; a short note when there is nothing to compare."""
    if old is None or new is None:
        return "<p class='prompts-note'>Save a template twice to compare its versions.</p>"
    if not diff:
        return f"<p class='prompts-note'>v{old} and v{new} have the same content.</p>"
    classes = {"+": "add", "-": "del", "@": "hunk"}
    spans = []
    for line in diff.splitlines():
        kind = "head" if line.startswith(("+++", "---")) else classes.get(line[:1], "ctx")
        spans.append(f"<span class='diff-{kind}'>{html.escape(line) or ' '}</span>")
    return f"<pre class='prompts-diff'>{''.join(spans)}</pre>"


def problem_text(exc: BaseException) -> str:
    """A problem shown inline (every line of a multi-line message marked)."""
    return "⚠ " + str(exc).replace("\n", "  \n⚠ ")


def loaded_note(name: str, shown_path: str) -> str:
    """Which template the editor holds, and its library file."""
    if not name:
        return "Nothing loaded: load a template from the library, or write one below."
    return f"Editing **{name}** · library file `{shown_path}`"


def tokens_note(count: int | None, spec: str, mode: str) -> str:
    """The token count of the preview, or how to get it (the model is loaded on Preview)."""
    if count is None:
        what = "apply its chat template and " if mode == "chat" else ""
        return f"Press **Preview** to load `{spec}`, {what}count the tokens."
    how = "chat template applied" if mode == "chat" else "plain text"
    return f"**{count} tokens** for `{spec}` ({how})"
