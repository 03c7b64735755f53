"""The codebase's shape rules, checked: short functions, a purpose line atop every module, and
no import inside a function unless it says why (start-up speed or an optional dependency).

Layering (which package may import which) is import-linter's job: see [tool.importlinter] in
pyproject.toml, run by `make lint`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "studio"
MAX_FUNCTION_LINES = 60
REASONS = ("# lazy:", "# optional:")
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "migrations" not in p.parts)


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _bodies(node: ast.AST) -> list[list[ast.stmt]]:
    """Every statement list inside functions (function bodies, and the blocks nested in them)."""
    found: list[list[ast.stmt]] = []
    for function in _functions(node):
        for inner in ast.walk(function):
            for name in ("body", "orelse", "finalbody", "handlers"):
                block = getattr(inner, name, None)
                if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
                    found.append(block)
    return found


def _unexplained_imports(tree: ast.AST, lines: list[str]) -> list[int]:
    """Line numbers of imports inside functions with no reason: one on the import itself, or
    a `# lazy:` / `# optional:` comment line directly above a run of consecutive imports."""
    bad: set[int] = set()
    for body in _bodies(tree):
        group_reason = False
        previous_was_import = False
        for statement in body:
            if not isinstance(statement, (ast.Import, ast.ImportFrom)):
                previous_was_import = False
                continue
            above = lines[statement.lineno - 2].strip() if statement.lineno >= 2 else ""
            if not previous_was_import:
                group_reason = False
            group_reason = group_reason or above.startswith(REASONS)
            own = lines[statement.lineno - 1 : statement.end_lineno or statement.lineno]
            if not group_reason and not any(r in line for line in own for r in REASONS):
                bad.add(statement.lineno)
            previous_was_import = True
    return sorted(bad)


def test_the_rules_see_every_module() -> None:
    assert len(MODULES) > 100
    assert PACKAGE / "services.py" in MODULES


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_is_longer_than_sixty_lines(path: Path) -> None:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    long = [
        f"{f.name} ({f.end_lineno - f.lineno + 1} lines, line {f.lineno})"
        for f in _functions(tree)
        if f.end_lineno is not None and f.end_lineno - f.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, f"{_name(path)}: split {', '.join(long)}"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_every_module_says_what_it_owns(path: Path) -> None:
    docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    assert docstring and docstring.strip(), f"{_name(path)} has no purpose docstring"


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_imports_inside_functions_say_why(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    unexplained = [
        f"line {line}: {lines[line - 1].strip()}"
        for line in _unexplained_imports(ast.parse(text), lines)
    ]
    assert not unexplained, (
        f"{_name(path)} imports inside functions without a reason; move them to the top, or add "
        f"'# lazy: <why>' / '# optional: <why>':\n  " + "\n  ".join(unexplained)
    )


def test_the_reason_check_reads_comments_as_meant() -> None:
    source = (
        "def f():\n"
        "    # lazy: torch is heavy\n"
        "    import torch\n"
        "    from a import (\n"
        "        b,\n"
        "    )\n"
        "    import json\n"
        "\n"
        "def g():\n"
        "    x = 1\n"
        "    import os\n"
        "    import sys  # optional: only on Windows\n"
    )
    assert _unexplained_imports(ast.parse(source), source.splitlines()) == [11]
