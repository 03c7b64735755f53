"""The template library as an engine: list, read, save, version, duplicate and delete templates.

`TemplateLibrary` binds one library folder to the store and the hosting policy; `Services` holds
the studio's, and tests build one on a copy. A save writes <library>/<name>.yaml and stores a
numbered version by content hash. No gradio here: the Prompts tab and `studio templates` call it.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.hosting import HostingPolicy
from studio.store import Store, TemplateVersion
from studio.templates import (
    NAME_PATTERN,
    PromptTemplate,
    TemplateError,
    load_template,
    parse_template,
    save_template,
)

EDITOR_SOURCE = "editor"


def check_name(name: str) -> str:
    """A template name from a textbox, or a TemplateError saying what a valid name looks like."""
    value = (name or "").strip()
    if not NAME_PATTERN.fullmatch(value):
        raise TemplateError(
            f"{value!r} is not a valid template name (it becomes the file name). Fix: use 1-64 "
            "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, "
            "e.g. 'my-template'"
        )
    return value


def validate(text: str) -> PromptTemplate:
    """The editor's YAML as a template; TemplateError names the key or variable at fault."""
    if not (text or "").strip():
        raise TemplateError("the editor is empty. Fix: load a template or write one")
    return parse_template(text, source=EDITOR_SOURCE)


def describe_valid(template: PromptTemplate) -> str:
    columns = ", ".join(sorted(template.variables())) or "none"
    scoring = f"choices: {', '.join(template.choices)}" if template.choices else "generated"
    return f"valid · `{template.name}` · {template.mode} mode · columns: {columns} · {scoring}"


@dataclass(frozen=True)
class Saved:
    template: PromptTemplate
    version: TemplateVersion
    created: bool

    @property
    def message(self) -> str:
        name, number = self.template.name, self.version.version
        if self.created:
            return f"saved {name} v{number}"
        return f"unchanged — same as v{number} of {name}"


def diff_versions(versions: list[TemplateVersion], old: int | None, new: int | None) -> str:
    """Unified diff of two stored versions' YAML; '' when either is missing."""
    by_number = {v.version: v for v in versions}
    if old not in by_number or new not in by_number:
        return ""
    a, b = by_number[old], by_number[new]
    lines = difflib.unified_diff(
        a.content.splitlines(keepends=True),
        b.content.splitlines(keepends=True),
        fromfile=f"{a.template_name} v{a.version}",
        tofile=f"{b.template_name} v{b.version}",
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


class TemplateLibrary:
    """One library folder of YAML templates, its stored versions, and who may change them."""

    def __init__(self, folder: Path, store: Store, policy: HostingPolicy) -> None:
        self.folder = folder
        self.store = store
        self.policy = policy

    def versions(self, name: str) -> list[TemplateVersion]:
        """The stored versions of `name`, oldest first."""
        return self.store.template_versions(name)

    def rows(self) -> list[list[Any]]:
        """One row per library file; a broken file is listed with its error instead of hiding."""
        latest = {v.template_name: v.version for v in self.store.latest_template_versions()}
        rows: list[list[Any]] = []
        for path in sorted(self.folder.glob("*.yaml")) if self.folder.is_dir() else []:
            try:
                template = load_template(path.stem, self.folder)
            except TemplateError as exc:
                rows.append([path.stem, "error", str(exc).splitlines()[0], ""])
                continue
            version = latest.get(template.name)
            rows.append(
                [
                    template.name,
                    template.mode,
                    template.description,
                    f"v{version}" if version else "",
                ]
            )
        return rows

    def names(self) -> list[str]:
        return (
            [path.stem for path in sorted(self.folder.glob("*.yaml"))]
            if self.folder.is_dir()
            else []
        )

    def read(self, name: str) -> str:
        """The library file's text as written (comments included); it need not be valid yet."""
        path = self.folder / f"{check_name(name)}.yaml"
        if not path.is_file():
            available = ", ".join(self.names()) or "none"
            raise TemplateError(
                f"no template named {name!r} in {self.folder} (available: {available})"
            )
        return path.read_text(encoding="utf-8")

    def save(self, text: str) -> Saved:
        """Write <library>/<name>.yaml and store the content as a new version, unless it is
        known. A public demo's library is read-only: the policy refuses before anything is read."""
        self.policy.check_shared_write("saving to the template library")
        template = validate(text)
        content, digest = template.to_yaml(), template.content_hash()
        known = {v.content_hash for v in self.store.template_versions(template.name)}
        save_template(template, self.folder)
        version = self.store.save_template_version(template.name, content, digest)
        return Saved(template, version, digest not in known)

    def duplicate(self, text: str, new_name: str) -> PromptTemplate:
        """A copy of the editor's template under a new name, written to the library (never over)."""
        self.policy.check_shared_write("adding to the template library")
        template = validate(text)
        name = check_name(new_name)
        copy = PromptTemplate(**{**template.model_dump(), "name": name})
        save_template(copy, self.folder, overwrite=False)
        return copy

    def delete(self, name: str) -> str:
        """Remove <library>/<name>.yaml and the stored versions no run uses; says what was kept."""
        self.policy.check_shared_write("deleting from the template library")
        name = check_name(name)
        path = self.folder / f"{name}.yaml"
        before = len(self.store.template_versions(name))
        existed = path.is_file()
        path.unlink(missing_ok=True)
        deleted = self.store.delete_template(name)
        kept = before - deleted
        parts = [f"deleted {name}: " + ("library file removed" if existed else "no library file")]
        parts.append(f"{deleted} stored version{'s' if deleted != 1 else ''} deleted")
        if kept:
            parts.append(f"{kept} kept because stored runs use {'them' if kept != 1 else 'it'}")
        return ", ".join(parts) + "."
