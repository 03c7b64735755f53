"""The library on disk: one YAML file per template, read and listed by name, written
atomically."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from studio.rendering import (
    TemplateError,
)
from studio.settings import PROMPTS_DIR
from studio.templates.schema import NAME_PATTERN, PromptTemplate, parse_template


def _read(path: Path) -> PromptTemplate:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"{path}: no such template file. Fix: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read it as UTF-8 text ({exc})") from exc
    return parse_template(text, source=str(path))


def _library_files(library: Path) -> list[Path]:
    return sorted(library.glob("*.yaml")) if library.is_dir() else []


def _read_library_file(path: Path) -> PromptTemplate:
    template = _read(path)
    # Lookup by name opens <name>.yaml, so a file must be called what its template is called.
    if template.name != path.stem:
        raise TemplateError(
            f"{path}: name '{template.name}' does not match the file name. Fix: set "
            f"name: {path.stem}, or rename the file to {template.name}.yaml"
        )
    return template


def load_template(spec: str | Path, library: Path = PROMPTS_DIR) -> PromptTemplate:
    """A template from a .yaml or .yml path, or by name from the library (library/<name>.yaml)."""
    text = str(spec)
    if isinstance(spec, Path) or text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        if not text.endswith((".yaml", ".yml")):  # never read an arbitrary file as a template
            raise TemplateError(
                f"{text}: not a template file (template files end in .yaml or .yml). Fix: give "
                "a template name from the library or the path of a .yaml template file"
            )
        return _read(Path(spec))
    path = library / f"{text}.yaml"
    if NAME_PATTERN.fullmatch(text) and path.is_file():
        return _read_library_file(path)
    available = ", ".join(path.stem for path in _library_files(library)) or "none"
    raise TemplateError(
        f"no template named {text!r} in {library} (available: {available}). "
        "Fix: use one of these names, or give the path of a .yaml file"
    )


def list_templates(library: Path = PROMPTS_DIR) -> list[PromptTemplate]:
    """Every template in the library, sorted by name; a broken file raises naming it."""
    templates = [_read_library_file(path) for path in _library_files(library)]
    return sorted(templates, key=lambda template: template.name)


def save_template(
    template: PromptTemplate, library: Path = PROMPTS_DIR, overwrite: bool = True
) -> Path:
    """Write library/<name>.yaml atomically; returns its path."""
    # The name pattern admits no '/' and no leading '.', so the file stays inside the library.
    if not NAME_PATTERN.fullmatch(template.name):
        raise TemplateError(f"template name {template.name!r} is not a valid file name")
    target = library / f"{template.name}.yaml"
    if not overwrite and target.exists():
        raise TemplateError(
            f"{target} already exists. Fix: choose another name, or save with overwrite"
        )
    library.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, template.to_yaml())
    return target


def _write_atomically(target: Path, text: str) -> None:
    # Readers (another tab, a running comparison) see the old file or the new one, never half.
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes 0600; a library file is shared like source code
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
