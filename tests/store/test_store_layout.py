"""The store's areas share only public pieces, imported at the top of the module.

Each module of studio.store (migrations aside) is parsed with `ast`: none may import a name
starting with `_` from another studio.store module (what several areas need lives, public, in
studio.store.rows or studio.store.checks), and none may import inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

STORE = Path(__file__).resolve().parents[2] / "studio" / "store"
MODULES = sorted(STORE.glob("*.py"))


def _module_name(path: Path) -> str:
    return "studio.store" if path.stem == "__init__" else f"studio.store.{path.stem}"


def _private_imports(tree: ast.AST, own: str) -> list[str]:
    """`module.name` for each name starting with `_` imported from another studio.store module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            source = node.module or ""
            if node.level:  # relative: within studio.store
                source = "studio.store" + (f".{source}" if source else "")
            if (source == "studio.store" or source.startswith("studio.store.")) and source != own:
                found += [f"{source}.{a.name}" for a in node.names if a.name.startswith("_")]
        elif isinstance(node, ast.Import):
            found += [
                a.name
                for a in node.names
                if a.name.startswith("studio.store.")
                and any(part.startswith("_") for part in a.name.split(".")[2:])
                and a.name != own
            ]
    return found


def _imports_in_functions(tree: ast.AST) -> list[str]:
    """`function (line n)` for each import statement anywhere inside a function."""
    found = []
    for function in ast.walk(tree):
        if isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found += [
                f"{function.name} (line {node.lineno})"
                for node in ast.walk(function)
                if isinstance(node, (ast.Import, ast.ImportFrom))
            ]
    return sorted(set(found))


def test_every_store_module_is_checked() -> None:
    names = {path.stem for path in MODULES}
    assert {"__init__", "store", "rows", "prompts", "experiments_import"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_area_imports_another_areas_private_helpers(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    private = _private_imports(tree, _module_name(path))
    assert not private, (
        f"studio/store/{path.name} imports private names of other store modules: "
        f"{', '.join(private)}; give them a public home (studio.store.rows) instead"
    )


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.name)
def test_no_store_module_imports_inside_a_function(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inside = _imports_in_functions(tree)
    assert not inside, f"studio/store/{path.name} imports inside {', '.join(inside)}"


def test_the_checks_see_what_they_look_for() -> None:
    source = (
        "from studio.store.prompts import _newest_version, template_by_name\n"
        "from studio.store.rows import result_row\n"
        "from studio.store.results import _own_helper\n"
        "import studio.store._hidden\n"
        "from .checks import _check_choice_scores\n"
        "def f():\n"
        "    if True:\n"
        "        from dataclasses import replace\n"
    )
    tree = ast.parse(source)
    assert _private_imports(tree, "studio.store.results") == [
        "studio.store.prompts._newest_version",
        "studio.store._hidden",
        "studio.store.checks._check_choice_scores",
    ]
    assert _imports_in_functions(tree) == ["f (line 8)"]
