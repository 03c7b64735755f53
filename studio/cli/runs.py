"""`studio runs`: the Experiments tab headless — list, show, export, bundle, tag, rename, note,
delete. Run ids: c<N> comparison run, t<N> tuning run, a<N> adapter; a bare number is a
comparison run (as in `studio compare --resume N`)."""

from __future__ import annotations

import argparse
import json
from datetime import date
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from studio.experiments.refs import RunRef
    from studio.services import Services
    from studio.store import Store

KINDS = ("comparison", "tuning", "adapter")


def add_runs_parser(sub: Any) -> None:
    runs = sub.add_parser(
        "runs",
        help="stored runs and adapters: list, show, export, bundle, tag, rename, note, delete",
        description="Every comparison run (c<N>), tuning run (t<N>) and adapter (a<N>); a bare "
        "number is a comparison run.",
    )
    runs_sub = runs.add_subparsers(dest="runs_command", required=True)
    listing = runs_sub.add_parser("list", help="list runs and adapters, newest first")
    listing.add_argument("--kind", choices=KINDS)
    listing.add_argument("--status", help="e.g. completed, running, failed, stopped, queued")
    listing.add_argument("--tag")
    listing.add_argument("--search", help="text in the name, note, tags, models, templates, data")
    listing.add_argument("--model")
    listing.add_argument("--template")
    listing.add_argument("--dataset", help="dataset name or content hash")
    listing.add_argument("--since", type=date.fromisoformat, metavar="YYYY-MM-DD")
    listing.add_argument("--until", type=date.fromisoformat, metavar="YYYY-MM-DD")
    listing.add_argument("--limit", type=int, default=50)
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)
    _add_reading(runs_sub)
    _add_changes(runs_sub)


def _add_reading(runs_sub: Any) -> None:
    """show, export and bundle: read runs, or move them between studios."""
    show = runs_sub.add_parser("show", help="a run's config, lineage, metrics and log")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    show.set_defaults(func=run_show)

    export = runs_sub.add_parser("export", help="per-example rows as CSV, JSON or JSONL")
    export.add_argument("ids", nargs="+", metavar="ID")
    export.add_argument("--format", choices=["csv", "json", "jsonl"], default="csv")
    export.add_argument("--output", required=True, metavar="FILE")
    export.set_defaults(func=run_export)

    bundle = runs_sub.add_parser("bundle", help="move runs between studios as one .zip")
    bundle_sub = bundle.add_subparsers(dest="bundle_command", required=True)
    out = bundle_sub.add_parser("export", help="write runs and what they refer to as a .zip")
    out.add_argument("ids", nargs="+", metavar="ID")
    out.add_argument("--output", required=True, metavar="FILE.zip")
    out.set_defaults(func=run_bundle_export)
    into = bundle_sub.add_parser("import", help="import a bundle (all or nothing)")
    into.add_argument("file")
    into.set_defaults(func=run_bundle_import)


def _add_changes(runs_sub: Any) -> None:
    """tag, rename, note and delete: changes to stored runs, under the hosting policy."""
    tag = runs_sub.add_parser("tag", help="add tags (or --remove one)")
    tag.add_argument("id")
    tag.add_argument("tag", help="a tag; several separated by commas (one with --remove)")
    tag.add_argument("--remove", action="store_true")
    tag.set_defaults(func=run_tag)
    rename = runs_sub.add_parser("rename", help="set the name shown for a run ('' clears it)")
    rename.add_argument("id")
    rename.add_argument("name")
    rename.set_defaults(func=run_rename)
    note = runs_sub.add_parser("note", help="set a run's note ('' clears it)")
    note.add_argument("id")
    note.add_argument("text")
    note.set_defaults(func=run_note)
    remove = runs_sub.add_parser(
        "delete", help="delete a run's own rows (shared templates and adapters are kept)"
    )
    remove.add_argument("id")
    remove.add_argument("--yes", action="store_true", help="confirm the delete")
    remove.set_defaults(func=run_delete)


def _services() -> Services:
    from studio.services import create_services  # lazy: keeps studio --help free of sqlalchemy

    return create_services()


def _store() -> Store:
    return _services().store


def _ref(text: str) -> RunRef:
    # lazy: keeps the experiments package out of `studio --help`
    from studio.experiments.refs import parse_ref

    return parse_ref(text)


def run_list(args: argparse.Namespace) -> int:
    # lazy: the catalog reads the store (sqlalchemy)
    from studio.experiments.catalog import Filters, list_entries

    store = _store()
    filters = Filters(
        kind=args.kind, status=args.status, model=args.model, template=args.template,
        dataset=args.dataset, tag=args.tag, search=args.search, since=args.since,
        until=args.until,
    )  # fmt: skip
    entries = list_entries(store, filters)[: args.limit]
    if args.json:
        print(json.dumps([_entry_json(store, e) for e in entries], indent=2, default=str))
        return 0
    print(f"{'ID':>5}  {'KIND':<10} {'STATUS':<11} {'CREATED':<16}  {'NAME':<28} {'HEADLINE'}")
    for e in entries:
        created = e.created_at.strftime("%Y-%m-%d %H:%M")
        tags = f"  [{', '.join(e.tags)}]" if e.tags else ""
        print(
            f"{e.ref!s:>5}  {e.kind:<10} {e.status:<11} {created:<16}  {e.name[:28]:<28} "
            f"{e.headline.text}{tags}"
        )
    return 0


def _entry_json(store: Any, entry: Any) -> dict[str, Any]:
    """Comparison runs keep the fields `runs list --json` always had (id is the number)."""
    base: dict[str, Any] = {}
    if entry.kind == "comparison":
        run = store.get_comparison_run(entry.ref.id)
        base = _run_json(run) if run is not None else {}
    estimate = entry.headline.estimate
    return {
        **base,
        "id": entry.ref.id,
        "ref": str(entry.ref),
        "kind": entry.kind,
        "name": entry.name,
        "status": entry.status,
        "created_at": entry.created_at.isoformat(),
        "models": list(entry.models),
        "templates": list(entry.templates),
        "dataset": base.get("dataset")
        or {"name": entry.dataset, "content_hash": entry.dataset_hash},
        "tags": list(entry.tags),
        "note": entry.note,
        "headline": entry.headline.text,
        "accuracy": estimate.value if estimate else None,
        "ci_low": estimate.low if estimate else None,
        "ci_high": estimate.high if estimate else None,
        "train_loss": entry.headline.train_loss,
        "eval_loss": entry.headline.eval_loss,
    }


def _run_json(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "scoring": run.scoring,
        "created_at": run.created_at.isoformat(),
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "dataset": {"name": run.dataset.name, "content_hash": run.dataset.content_hash},
        "n_examples": run.n_examples,
        "results_done": run.results_done,
        "error": run.error,
        "configs": [
            {
                "id": c.id,
                "label": c.label,
                "model": c.model_spec,
                "template": c.template_name,
                "template_version": c.template_version,
                "shots": c.shots,
                "seed": c.seed,
            }
            for c in run.configs
        ],
        "config": run.config,
    }


def run_show(args: argparse.Namespace) -> int:
    # lazy: run details and reports read the store (sqlalchemy)
    from studio.experiments.detail import open_run
    from studio.experiments.export import render
    from studio.experiments.report import detail_text

    detail = open_run(_store(), _ref(args.id))
    if args.json:
        document = json.loads(render([detail], "json"))
        print(json.dumps({**document["runs"][0], "log": detail.log}, indent=2))
        return 0
    print(detail_text(detail))
    return 0


def run_export(args: argparse.Namespace) -> int:
    # lazy: export reads the store (sqlalchemy)
    from studio.experiments.export import export_runs
    from studio.experiments.refs import parse_refs

    rows = export_runs(_store(), parse_refs(args.ids), args.format, args.output)
    print(f"wrote {rows} rows to {args.output}")
    return 0


def run_bundle_export(args: argparse.Namespace) -> int:
    # lazy: bundles read the store (sqlalchemy)
    from studio.experiments.bundle import export_bundle
    from studio.experiments.refs import parse_refs

    counts = export_bundle(_store(), parse_refs(args.ids), args.output)
    summary = ", ".join(f"{n} {name.split('.')[0].replace('_', ' ')}" for name, n in counts.items())
    print(f"wrote {args.output}: {summary}")
    return 0


def run_bundle_import(args: argparse.Namespace) -> int:
    # Under the hosting policy: a public demo imports nothing; size limits bound the zip.
    report = _services().experiments.import_bundle(args.file)
    runs = [f"c{old}->c{new}" for old, new in report.comparison_ids.items()]
    runs += [f"t{old}->t{new}" for old, new in report.tuning_ids.items()]
    print(f"imported {args.file}: {', '.join(runs) or 'no runs'}")
    added = ", ".join(f"{n} {what}" for what, n in report.added.items() if n)
    reused = ", ".join(f"{n} {what}" for what, n in report.reused.items() if n)
    print(f"added: {added or 'nothing'}; already here: {reused or 'nothing'}")
    for note in report.notes:
        print(f"note: {note}")
    return 0


def run_tag(args: argparse.Namespace) -> int:
    ref, actions = _ref(args.id), _services().experiments
    if args.remove:
        removed = actions.untag(ref, args.tag)
        print(f"{ref}: removed tag {args.tag!r}" if removed else f"{ref} had no tag {args.tag!r}")
        return 0
    added = actions.tag(ref, args.tag)
    print(f"{ref}: tagged {', '.join(added)}" if added else f"{ref} already had {args.tag!r}")
    return 0


def run_rename(args: argparse.Namespace) -> int:
    ref = _ref(args.id)
    _services().experiments.rename(ref, args.name)
    print(f"{ref}: renamed to {args.name!r}" if args.name.strip() else f"{ref}: name cleared")
    return 0


def run_note(args: argparse.Namespace) -> int:
    ref = _ref(args.id)
    _services().experiments.annotate(ref, args.text)
    print(f"{ref}: note saved" if args.text.strip() else f"{ref}: note cleared")
    return 0


def run_delete(args: argparse.Namespace) -> int:
    # lazy: run details and the delete report read the store (sqlalchemy)
    from studio.experiments.actions import describe_delete
    from studio.experiments.detail import open_run

    ref, actions = _ref(args.id), _services().experiments
    detail = open_run(actions.store, ref)
    if not args.yes:
        raise ValueError(
            f"deleting {ref} ({detail.entry.name}, {detail.entry.progress}) cannot be undone; "
            "add --yes to confirm"
        )
    print(describe_delete(actions.delete(ref)))
    return 0
