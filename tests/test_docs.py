"""The docs stay true to the code (as datasette checks its docs): the README's layout, the CLI
reference, the settings, links, paths and the tab pages are compared with what is on disk.

Fast: no model, no browser. Only `build_parser` and `Settings` are imported, both light.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.cli.main import build_parser
from studio.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
STUDIO = ROOT / "studio"
DOCS = ROOT / "docs"
README = ROOT / "README.md"
CLI_DOC = DOCS / "cli.md"
CONFIG_DOC = DOCS / "configuration.md"
PAGES = sorted([README, ROOT / "SECURITY.md", *DOCS.glob("*.md")])

FENCE = re.compile(r"^```.*?^```", re.M | re.S)
CODE_SPAN = re.compile(r"`[^`\n]+`")
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$", re.M)
# A STUDIO_* name as a word; a trailing `_*` or `*` (STUDIO_MAX_RENDER_*) makes it a prefix.
ENV_NAME = re.compile(r"(?<![A-Za-z0-9_])(STUDIO_[A-Z0-9_]*)(\*?)")
# A repository path in prose or code: not the tail of another path (.venv/bin/studio, a URL).
STUDIO_PATH = re.compile(r"(?<![\w/.$~-])studio/[\w./*-]*")
REPO_PATH = re.compile(r"(?<![\w/.$~-])(?:studio|tests|benchmarks|scripts|docs)/[\w./*<>-]*")


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _section(text: str, title: str) -> str:
    """The body of the `## title` section (up to the next heading of level 1 or 2)."""
    match = re.search(rf"^## {re.escape(title)}\s*\n(.*?)(?=^#{{1,2}} |\Z)", text, re.M | re.S)
    assert match, f"no '## {title}' section"
    return match.group(1)


def _without_code(text: str) -> str:
    """Text with code blocks removed and code spans blanked, so only real links remain."""
    return CODE_SPAN.sub("`code`", FENCE.sub("", text))


def _code(text: str) -> list[str]:
    """The contents of every fenced block and code span."""
    blocks = FENCE.findall(text)
    return blocks + CODE_SPAN.findall(FENCE.sub("", text))


def _links(path: Path) -> list[str]:
    return LINK.findall(_without_code(_read(path)))


def _is_external(target: str) -> bool:
    return re.match(r"^[a-z][a-z0-9+.-]*:", target) is not None


# -- 1. the README's Layout section -------------------------------------------------------------


def _packages() -> list[str]:
    """Every package under studio/ as `studio/<path>/`, migrations (Alembic's) left out."""
    found = []
    for init in STUDIO.rglob("__init__.py"):
        package = init.parent
        rel = _rel(package)
        if package == STUDIO or rel.startswith("studio/store/migrations"):
            continue
        found.append(f"{rel}/")
    return sorted(found)


def _modules() -> list[str]:
    return sorted(_rel(p) for p in STUDIO.glob("*.py") if p.name != "__init__.py")


def _layout() -> str:
    return _section(_read(README), "Layout")


def test_disk_has_packages_and_modules() -> None:
    assert "studio/cli/" in _packages()
    assert "studio/settings.py" in _modules()


def test_readme_layout_lists_every_package_and_module_as_a_bullet() -> None:
    # A bullet (nested ones too) names its paths in code spans before its " — " role.
    heads = re.findall(r"^\s*- ((?:`[^`]+`,?\s*)+)—", _layout(), re.M)
    bullets = {name for head in heads for name in re.findall(r"`([^`]+)`", head)}
    missing = [name for name in _packages() + _modules() if name not in bullets]
    assert not missing, f"README Layout has no bullet for: {missing}"


def test_readme_layout_names_only_existing_paths() -> None:
    named = {m.rstrip(".,;:") for m in STUDIO_PATH.findall(_layout())}
    assert named, "README Layout names no studio/ path"
    gone = sorted(name for name in named if not (ROOT / name).exists())
    assert not gone, f"README Layout names paths that do not exist: {gone}"


def _layers() -> list[str]:
    """The layers contract of pyproject.toml, top to bottom, as `cli`, `compare | tuning`..."""
    text = _read(ROOT / "pyproject.toml")
    match = re.search(r'type\s*=\s*"layers"\s*\nlayers\s*=\s*\[(.*?)\]', text, re.S)
    assert match, "pyproject.toml has no import-linter layers contract"
    layers = re.findall(r'"([^"]+)"', match.group(1))
    return [re.sub(r"\s*\|\s*", " | ", layer.replace("studio.", "")) for layer in layers]


@pytest.mark.parametrize("page", [README, DOCS / "design.md"], ids=_rel)
def test_layer_order_matches_the_import_linter_contract(page: Path) -> None:
    chain = " → ".join(_layers())
    prose = " ".join(_read(page).split())
    assert chain in prose, f"{_rel(page)} does not state the layers as: {chain}"


# -- 2. every sub-command and flag in docs/cli.md -----------------------------------------------


def _commands(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], argparse.ArgumentParser]]:
    seen: set[int] = set()
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for name, sub in action.choices.items():
            if id(sub) in seen:  # an alias of a command already walked
                continue
            seen.add(id(sub))
            yield (*path, name), sub
            yield from _commands(sub, (*path, name))


COMMANDS = dict(_commands(build_parser()))


def _long_options(parser: argparse.ArgumentParser) -> list[str]:
    options = []
    for action in parser._actions:
        # -h/--help is argparse's own, on every command; cli.md says so once at the top.
        if isinstance(action, argparse._HelpAction):
            continue
        options += [s for s in action.option_strings if s.startswith("--")]
    return options


def _cli_sections() -> dict[str, tuple[int, str]]:
    """`studio <command>` heading → (heading level, the section's text with its subsections)."""
    text = _read(CLI_DOC)
    headings = list(HEADING.finditer(text))
    sections = {}
    for i, heading in enumerate(headings):
        level, title = len(heading.group(1)), heading.group(2)
        end = next(
            (h.start() for h in headings[i + 1 :] if len(h.group(1)) <= level),
            len(text),
        )
        if title.startswith("studio "):
            sections[title.removeprefix("studio ").strip()] = (level, text[heading.end() : end])
    return sections


def test_cli_has_commands() -> None:
    assert {"serve", "compare", "tune"} <= {path[0] for path in COMMANDS}


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_cli_doc_has_a_section_per_command_with_every_flag(path: tuple[str, ...]) -> None:
    name = " ".join(path)
    sections = _cli_sections()
    assert name in sections, f"docs/cli.md has no heading 'studio {name}'"
    level, body = sections[name]
    if len(path) == 1:
        assert level == 2, f"'studio {name}' should be a '##' heading, not level {level}"
    else:
        assert level >= 3, f"'studio {name}' is nested: use '###' (or deeper), not level {level}"
    missing = [
        flag
        for flag in _long_options(COMMANDS[path])
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", body)
    ]
    assert not missing, f"docs/cli.md section 'studio {name}' does not mention {missing}"


# -- 3. every setting in docs/configuration.md, and no STUDIO_* name that does not exist --------


def _env_names(name: str) -> list[str]:
    """The environment names pydantic-settings reads a Settings field from."""
    field = Settings.model_fields[name]
    alias = field.validation_alias or field.alias
    if isinstance(alias, str):
        names = [alias]
    elif alias is not None and hasattr(alias, "choices"):  # AliasChoices
        names = [choice for choice in alias.choices if isinstance(choice, str)]
    else:
        names = [Settings.model_config.get("env_prefix", "") + name]
    return [n.upper() for n in names]  # case_sensitive is off: documented upper-case


SETTINGS = {name: _env_names(name) for name in Settings.model_fields}


def _mentions(text: str, name: str) -> bool:
    return re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", text) is not None


def test_settings_map_to_studio_names() -> None:
    assert SETTINGS["home"] == ["STUDIO_HOME"]
    assert SETTINGS["db_url"] == ["STUDIO_DB_URL"]


@pytest.mark.parametrize("field", sorted(SETTINGS))
def test_configuration_doc_names_every_setting(field: str) -> None:
    text = _read(CONFIG_DOC)
    assert any(_mentions(text, env) for env in SETTINGS[field]), (
        f"docs/configuration.md does not document Settings.{field} as {SETTINGS[field]}"
    )


def _code_text() -> str:
    """Where a STUDIO_* name outside Settings may live: the package, set-up scripts, app, make,
    and the test helpers that read the STUDIO_TEST_* switches."""
    files = [*STUDIO.rglob("*.py"), *(ROOT / "scripts").glob("*"), ROOT / "app.py"]
    files += [ROOT / "Makefile", ROOT / "tests" / "needs.py", ROOT / "tests" / "ui" / "conftest.py"]
    return "\n".join(_read(f) for f in files if f.is_file())


def test_every_studio_name_in_the_docs_exists() -> None:
    known = {env for names in SETTINGS.values() for env in names}
    code = _code_text()
    unknown = set()
    for page in PAGES:
        for name, star in ENV_NAME.findall(_read(page)):
            if star or name.endswith("_"):  # a prefix such as STUDIO_MAX_RENDER_*
                if not any(env.startswith(name) for env in known):
                    unknown.add(f"{_rel(page)}: {name}{star}")
            elif name not in known and not _mentions(code, name):
                unknown.add(f"{_rel(page)}: {name}")
    assert not unknown, f"STUDIO_* names in the docs that nothing reads: {sorted(unknown)}"


# -- 4. relative links and images resolve --------------------------------------------------------


def _slugs(path: Path) -> set[str]:
    """GitHub's anchors for the headings of a page."""
    slugs: set[str] = set()
    for match in HEADING.finditer(FENCE.sub("", _read(path))):
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", match.group(2))
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in slugs:
            n += 1
            candidate = f"{slug}-{n}"
        slugs.add(candidate)
    return slugs


def test_pages_have_links() -> None:
    assert DOCS / "cli.md" in PAGES
    assert _links(README), "README.md has no links"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_relative_links_and_images_resolve(page: Path) -> None:
    broken = []
    for target in _links(page):
        if _is_external(target) or target.startswith("#"):
            continue
        file = target.split("#", 1)[0]
        if not (page.parent / file).exists():
            broken.append(target)
    assert not broken, f"{_rel(page)} links to missing files: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_anchors_name_headings(page: Path) -> None:
    broken = []
    for target in _links(page):
        if _is_external(target) or "#" not in target:
            continue
        file, anchor = target.split("#", 1)
        linked = (page.parent / file).resolve() if file else page
        if linked.suffix == ".md" and linked.is_file() and anchor not in _slugs(linked):
            broken.append(target)
    assert not broken, f"{_rel(page)} links to headings that do not exist: {broken}"


@pytest.mark.parametrize("page", PAGES, ids=_rel)
def test_repository_paths_in_code_exist(page: Path) -> None:
    """Paths such as `studio/runtime/heap.py` or `tests/pg.py` named in code spans and blocks."""
    missing = set()
    for code in _code(_read(page)):
        for path in REPO_PATH.findall(code):
            path = path.rstrip(".,;:")
            if "<" in path:  # a placeholder: adapters/<name>
                continue
            found = list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()
            if not found:
                missing.add(path)
    assert not missing, f"{_rel(page)} names paths that do not exist: {sorted(missing)}"


# -- 5. every UI tab has its page, linked from the README --------------------------------------


def _tabs() -> list[str]:
    return re.findall(r'gr\.Tab\(\s*"([^"]+)"', _read(STUDIO / "ui" / "app.py"))


def test_ui_has_tabs() -> None:
    assert "Prompts" in _tabs()


@pytest.mark.parametrize("tab", _tabs())
def test_every_tab_has_a_page_linked_from_the_readme(tab: str) -> None:
    slug = re.sub(r"[^a-z0-9]+", "-", tab.lower()).strip("-")
    page = DOCS / f"{slug}.md"
    assert page.is_file(), f"the '{tab}' tab has no page {_rel(page)}"
    targets = {target.split("#", 1)[0] for target in _links(README)}
    assert f"docs/{slug}.md" in targets, f"README.md does not link docs/{slug}.md ('{tab}' tab)"
