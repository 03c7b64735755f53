"""`studio templates`: the Prompts tab headless — list, show, versions, diff, render, save, delete.

Every sub-command calls the tab's own engines: `TemplateLibrary` (Services.templates) for the
library folder and its stored versions, and studio.templates.preview for the exact prompt text of
a data row. Save and delete change the library, so the hosting policy applies through the library.
Each command takes an optional `Services` (tests pass one whose library is a copy).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.cli.arguments import add_column_map

if TYPE_CHECKING:
    from studio.services import Services
    from studio.store import TemplateVersion
    from studio.templates import PromptTemplate
    from studio.templates.preview import Preview


def add_templates_parser(sub: Any) -> None:
    p = sub.add_parser(
        "templates",
        help="the prompt template library: list, show, versions, diff, render, save, delete",
        description="The Prompts tab headless: the same library folder, stored versions and "
        "preview engine.",
    )
    cmds = p.add_subparsers(dest="templates_command", required=True)
    listing = cmds.add_parser(
        "list", help="library templates: name, mode, description, latest stored version"
    )
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    listing.set_defaults(func=run_list)
    show = cmds.add_parser("show", help="a library template's YAML, as written")
    show.add_argument("name")
    show.set_defaults(func=run_show)
    versions = cmds.add_parser(
        "versions", help="a template's stored versions: number, hash, saved at, used by runs"
    )
    versions.add_argument("name")
    versions.add_argument("--json", action="store_true", help="print JSON instead of a table")
    versions.set_defaults(func=run_versions)
    diff = cmds.add_parser("diff", help="unified diff of two stored versions of a template")
    diff.add_argument("name")
    diff.add_argument("old", type=_version, metavar="OLD", help="version number, e.g. 1 or v1")
    diff.add_argument("new", type=_version, metavar="NEW", help="version number, e.g. 2 or v2")
    diff.set_defaults(func=run_diff)
    _add_render(cmds)
    save = cmds.add_parser(
        "save", help="validate a YAML template file and save it to the library as a new version"
    )
    save.add_argument("file", help="a .yaml template file; it is saved under its `name`")
    save.set_defaults(func=run_save)
    delete = cmds.add_parser(
        "delete", help="remove a library template (versions stored runs use are kept)"
    )
    delete.add_argument("name")
    delete.add_argument("--yes", action="store_true", help="confirm the delete")
    delete.set_defaults(func=run_delete)


def _add_render(cmds: Any) -> None:
    render = cmds.add_parser(
        "render",
        help="the exact prompt text a model sees for one data row, and its gold answer",
        description="Row N of the data with the first K other rows as shots, through the Prompts "
        "tab's preview engine. A chat-mode template's text is a model's chat template applied to "
        "the turns, so it needs --model (which loads that model, as the tab's Preview does).",
    )
    render.add_argument("template", metavar="NAME", help="library template name or .yaml file")
    render.add_argument(
        "--data", required=True, metavar="FILE", help="data: CSV, TSV, JSONL, JSON or Parquet"
    )
    render.add_argument("--row", type=int, default=0, metavar="N", help="row index (0: first)")
    render.add_argument(
        "--shots", type=int, default=0, metavar="K", help="shots: the first K other rows"
    )
    render.add_argument(
        "--model",
        metavar="SPEC",
        help="model whose tokenizer renders a chat-mode template (and counts the tokens)",
    )
    add_column_map(render)
    render.add_argument("--json", action="store_true", help="print JSON (exact strings)")
    render.set_defaults(func=run_render)


def _version(text: str) -> int:
    digits = text[1:] if text[:1] in ("v", "V") else text
    if not digits.isdigit():
        raise argparse.ArgumentTypeError(f"'{text}' is not a version number (e.g. 2 or v2)")
    return int(digits)


def _open(services: Services | None) -> Services:
    if services is not None:
        return services
    from studio.services import create_services  # lazy: keeps studio --help free of sqlalchemy

    return create_services()


# -- reading the library ---------------------------------------------------------------------


def run_list(args: argparse.Namespace, services: Services | None = None) -> int:
    library = _open(services).templates
    rows = library.rows()
    if args.json:
        print(json.dumps([_row_json(row) for row in rows], indent=2))
        return 0
    if not rows:
        print(f"No templates in {library.folder}.")
        return 0
    width = max(len(row[0]) for row in rows)
    print(f"{'NAME':<{width}}  {'MODE':<10} {'LATEST':>6}  DESCRIPTION")
    for name, mode, description, latest in rows:
        print(f"{name:<{width}}  {mode:<10} {latest or '-':>6}  {description}")
    return 0


def _row_json(row: list[Any]) -> dict[str, Any]:
    name, mode, description, latest = row
    return {
        "name": name,
        "mode": mode,  # "error" for a file that does not validate; description says why
        "description": description,
        "latest_version": int(latest[1:]) if latest else None,
    }


def run_show(args: argparse.Namespace, services: Services | None = None) -> int:
    text = _open(services).templates.read(args.name)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    return 0


def run_versions(args: argparse.Namespace, services: Services | None = None) -> int:
    found = _stored(_open(services), args.name)
    if args.json:
        print(json.dumps([_version_json(v) for v in found], indent=2))
        return 0
    if not found:
        print(f"{args.name} has no stored versions yet (a save, or a run that uses it, stores one)")
        return 0
    print(f"{'VERSION':<8} {'HASH':<12}  {'SAVED (UTC)':<19}  USED BY RUNS")
    for v in found:
        saved = v.created_at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"{'v' + str(v.version):<8} {v.content_hash[:12]:<12}  {saved:<19}  {v.used_by_runs}")
    return 0


def _version_json(version: TemplateVersion) -> dict[str, Any]:
    return {
        "version": version.version,
        "hash": version.content_hash,
        "saved_at": version.created_at.isoformat(),
        "used_by_runs": version.used_by_runs,
    }


def _stored(services: Services, name: str) -> list[TemplateVersion]:
    """The stored versions of `name`, oldest first (none yet for a library template never
    saved or used); an error when the name is neither in the library nor in the store."""
    # lazy: the library imports sqlalchemy
    from studio.templates import TemplateError
    from studio.templates.library import check_name

    library = services.templates
    found = library.versions(check_name(name))
    if not found and name not in library.names():
        raise TemplateError(
            f"no template named {name!r} in {library.folder} and no stored versions of it. "
            "Fix: see `studio templates list` for the names"
        )
    return found


def run_diff(args: argparse.Namespace, services: Services | None = None) -> int:
    # lazy: the library imports sqlalchemy
    from studio.templates import TemplateError
    from studio.templates.library import diff_versions

    found = _stored(_open(services), args.name)
    numbers = [v.version for v in found]
    missing = [n for n in (args.old, args.new) if n not in numbers]
    if missing:
        stored = ", ".join(f"v{n}" for n in numbers) or "none yet"
        raise TemplateError(
            f"{args.name} has no stored version v{missing[0]} (stored: {stored}). Fix: see "
            f"`studio templates versions {args.name}`"
        )
    diff = diff_versions(found, args.old, args.new)
    sys.stdout.write(diff or f"v{args.old} and v{args.new} of {args.name} have the same content.\n")
    return 0


# -- rendering a data row ----------------------------------------------------------------------


def run_render(args: argparse.Namespace, services: Services | None = None) -> int:
    # lazy: the preview engine and data readers (jinja2, numpy) stay out of `studio --help`
    from studio.datasets import load_dataset, map_columns
    from studio.templates import preview

    services = _open(services)
    template = _template(services, args.template)
    path = preview.resolve_data_path(args.data)
    services.policy.check_data_path(path)  # before the file is looked at, as in the tab
    dataset = map_columns(load_dataset(path, policy=services.policy), dict(args.column_map or []))
    tokenizer = _tokenizer(services, template, args.model)
    try:
        shown = preview.build_preview(template, dataset, args.row, args.shots, tokenizer)
    except IndexError as exc:  # a row outside the file: the user's to fix, like any ValueError
        raise ValueError(str(exc)) from None
    tokens = preview.count_tokens(tokenizer, shown.text, shown.mode) if tokenizer else None
    if args.json:
        print(json.dumps(_render_json(args, template, shown, tokens), indent=2, default=str))
        return 0
    summary = preview.row_summary(shown, args.row, args.shots, args.data)
    print(summary + (f" · {tokens} tokens for {args.model}" if tokens is not None else ""))
    print("=== prompt ===")
    print(shown.text)
    delimiter = _delimiter(template)
    after = f" (follows the prompt after {delimiter!r})" if delimiter else ""
    print(f"=== gold answer{after} ===")
    print(shown.answer)
    return 0


def _template(services: Services, spec: str) -> PromptTemplate:
    """A library template by name, or a .yaml file (an operator's; the policy decides)."""
    from studio.templates import load_template  # lazy: the template engine imports jinja2

    if spec.endswith((".yaml", ".yml")) or "/" in spec or "\\" in spec:
        services.policy.check_template_path(spec)
    return load_template(spec, services.templates.folder)


def _tokenizer(services: Services, template: PromptTemplate, spec: str | None) -> Any | None:
    """The model's tokenizer when --model is given; chat mode cannot render without one."""
    if spec is None:
        if template.mode == "chat":
            raise ValueError(
                f"template '{template.name}' is in chat mode: the text a model sees is that "
                "model's chat template applied to the turns, so rendering it needs the model. "
                f"Fix: add --model SPEC (e.g. --model {services.settings.default_model}; "
                "`studio models` lists them), or render a completion-mode template"
            )
        return None
    from studio.models.loading import LoadRequest  # lazy: model loading imports torch on use

    services.policy.check_model_spec(spec)
    loaded = services.models.get(LoadRequest(spec), lambda m: print(m, file=sys.stderr))
    return loaded.tokenizer


def _delimiter(template: PromptTemplate) -> str:
    """What joins a completion prompt and its answer when scored ('' in chat mode)."""
    return template.target_delimiter if template.mode == "completion" else ""


def _render_json(
    args: argparse.Namespace, template: PromptTemplate, shown: Preview, tokens: int | None
) -> dict[str, Any]:
    return {
        "template": template.name,
        "mode": shown.mode,
        "data": args.data,
        "row": args.row,
        "rows": shown.rows,
        "shots": args.shots,
        "text": shown.text,
        "fewshot": shown.fewshot,
        "answer": shown.answer,
        "target_delimiter": _delimiter(template),
        "data_row": shown.row,
        "model": args.model,
        "tokens": tokens,
    }


# -- changing the library ----------------------------------------------------------------------


def run_save(args: argparse.Namespace, services: Services | None = None) -> int:
    # lazy: the template engine (jinja2, yaml) stays out of `studio --help`
    from studio.templates import TemplateError, parse_template

    path = Path(args.file).expanduser()
    if not path.name.endswith((".yaml", ".yml")):
        raise TemplateError(
            f"{args.file}: not a template file (template files end in .yaml or .yml). Fix: give "
            "the path of a .yaml template file"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{args.file}: cannot read it as UTF-8 text ({exc})") from None
    parse_template(text, source=str(path))  # errors name this file, not the tab's editor
    library = _open(services).templates
    saved = library.save(text)
    print(f"{saved.message} ({library.folder / saved.template.name}.yaml)")
    return 0


def run_delete(args: argparse.Namespace, services: Services | None = None) -> int:
    # lazy: the library imports sqlalchemy
    from studio.templates import TemplateError
    from studio.templates.library import check_name

    library = _open(services).templates
    name = check_name(args.name)
    if name not in library.names() and not library.versions(name):
        raise TemplateError(
            f"no template named {name!r} in {library.folder} and no stored versions of it. "
            "Fix: see `studio templates list` for the names"
        )
    if not args.yes:
        raise ValueError(
            f"deleting {name} removes {library.folder / name}.yaml and the stored versions no "
            "run uses; it cannot be undone. Add --yes to confirm"
        )
    print(library.delete(name))
    return 0
