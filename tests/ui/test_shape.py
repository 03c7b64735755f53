"""Every tab has the same shape: the same files with the same meaning, one builder returning its
<Tab>Tab, one <Tab>Handlers class, and gradio-free views and forms (tested without a browser)."""

from __future__ import annotations

import ast
import importlib
import inspect
from pathlib import Path

import pytest

import studio.ui

UI = Path(studio.ui.__file__).parent
TABS = ["start", "prompts", "compare", "tune", "experiments", "playground"]
GRADIO_FREE = [
    *(UI / tab / name for tab in TABS for name in ("views.py", "form.py")),
    UI / "compare" / "chart.py",
    UI / "tune" / "runs.py",
    UI / "common" / "formatting.py",
    UI / "common" / "live.py",
    UI / "common" / "tuning_runs.py",
]


def _title(tab: str) -> str:
    return tab.capitalize()


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_has_the_same_files(tab: str) -> None:
    folder = UI / tab
    for name in ("__init__.py", "tab.py", "handlers.py", "views.py"):
        assert (folder / name).is_file(), f"studio/ui/{tab}/ has no {name}"
    docstring = ast.get_docstring(ast.parse((folder / "__init__.py").read_text(encoding="utf-8")))
    assert docstring and "\n" not in docstring.strip(), f"studio/ui/{tab}/__init__.py: one line"


@pytest.mark.parametrize("tab", TABS)
def test_every_tab_builds_one_tab_object_with_one_handlers_class(tab: str) -> None:
    build = getattr(importlib.import_module(f"studio.ui.{tab}.tab"), f"build_{tab}_tab")
    assert inspect.signature(build).return_annotation == f"{_title(tab)}Tab"
    handlers = importlib.import_module(f"studio.ui.{tab}.handlers")
    assert inspect.isclass(getattr(handlers, f"{_title(tab)}Handlers"))


@pytest.mark.parametrize("path", [p for p in GRADIO_FREE if p.exists()], ids=lambda p: p.name)
def test_views_and_forms_do_not_import_gradio(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = [
        name
        for node in ast.walk(tree)
        for name in (
            [alias.name for alias in node.names] if isinstance(node, ast.Import) else
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        )
    ]  # fmt: skip
    assert not [name for name in imported if name.split(".")[0] == "gradio"], path


def test_tabs_do_not_import_each_other() -> None:
    for tab in TABS:
        for path in (UI / tab).glob("*.py"):
            text = path.read_text(encoding="utf-8")
            others = [other for other in TABS if other != tab and f"studio.ui.{other}" in text]
            assert not others, f"{path.relative_to(UI)} imports {others}: share via common/"
