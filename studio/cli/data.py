"""`studio data`: datasets the studio writes — preference pairs built from a comparison run — and
the versions it keeps of them: pairs, list, show, export."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path
from typing import Any


def add_data_parser(sub: Any) -> None:
    data = sub.add_parser(
        "data",
        help="datasets the studio writes: preference pairs from runs; list, show, export",
        description="Datasets the studio writes and versions: preference pairs built from a "
        "comparison run (by its metric or its judge).",
    )
    data_sub = data.add_subparsers(dest="data_command", required=True)
    pairs = data_sub.add_parser(
        "pairs", help="chosen/rejected pairs from a generation run, saved as a dataset version"
    )
    pairs.add_argument("--run", required=True, metavar="cN", help="the comparison run, e.g. c7")
    pairs.add_argument(
        "--by",
        required=True,
        metavar="METRIC|judge",
        help="the run's metric (its name, or 'metric') or 'judge' (its judge's verdicts)",
    )
    pairs.add_argument("--output", required=True, metavar="NAME", help="dataset name")
    pairs.add_argument(
        "--margin", type=float, default=0.0, help="keep pairs whose scores differ by more"
    )
    pairs.add_argument("--drop", default="", metavar="I,J", help="pair positions to leave out")
    pairs.add_argument("--swap", default="", metavar="I,J", help="pairs to swap chosen/rejected")
    pairs.add_argument("--dry-run", action="store_true", help="list the pairs, save nothing")
    pairs.set_defaults(func=run_pairs)
    listing = data_sub.add_parser("list", help="written datasets, newest first")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_list)
    show = data_sub.add_parser("show", help="one dataset version: lineage and first rows")
    show.add_argument("name", metavar="NAME[@vN]")
    show.add_argument("--rows", type=int, default=3)
    show.set_defaults(func=run_show)
    export = data_sub.add_parser("export", help="copy a dataset version's JSONL file")
    export.add_argument("name", metavar="NAME[@vN]")
    export.add_argument("--output", required=True, metavar="FILE.jsonl")
    export.set_defaults(func=run_export)


def _positions(text: str) -> frozenset[int]:
    try:
        return frozenset(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ValueError(f"'{text}' is not a comma-separated list of pair positions") from None


def run_pairs(args: argparse.Namespace) -> int:
    # lazy: the store and the comparison code stay out of `studio --help`
    from studio.data.pairs import Review, build_pairs, pairs_dataset
    from studio.experiments.refs import parse_ref
    from studio.services import create_services

    ref = parse_ref(args.run)
    if ref.kind != "comparison":
        raise ValueError(f"--run {args.run}: pairs come from a comparison run (c<N>)")
    services = create_services()
    if args.dry_run:
        for i, pair in enumerate(build_pairs(services.store, ref.id, args.by, args.margin)):
            print(
                f"[{i}] example {pair.example_index}: {pair.chosen_from} over {pair.rejected_from}"
            )
            print(f"    chosen:   {pair.chosen[:100]!r}\n    rejected: {pair.rejected[:100]!r}")
        return 0
    review = Review(_positions(args.drop), _positions(args.swap))
    directory = services.settings.home / "datasets"
    version = pairs_dataset(
        services.store, services.policy, directory, ref.id, args.by, args.output, args.margin,
        review,
    )  # fmt: skip
    print(f"{version.ref}: {version.dataset.n_rows} pairs from c{ref.id} by {args.by}")
    print(version.dataset.path)
    return 0


def _version(store: Any, text: str) -> Any:
    name, _, number = text.partition("@v")
    version = store.get_dataset_version(name, int(number) if number else None)
    if version is None:
        raise ValueError(f"no written dataset {text!r} (`studio data list` lists them)")
    return version


def run_list(args: argparse.Namespace) -> int:
    from studio.services import create_services  # lazy: keeps `studio --help` fast

    versions = create_services().store.dataset_versions()
    if args.json:
        rows = [
            {"name": v.name, "version": v.version, "kind": v.kind, "rows": v.dataset.n_rows,
             "path": v.dataset.path, "lineage": v.lineage, "created_at": v.created_at.isoformat()}
            for v in versions
        ]  # fmt: skip
        print(json.dumps(rows, indent=2))
        return 0
    for v in versions:
        source = v.lineage.get("source", "")
        print(
            f"{v.ref:<32} {v.kind:<10} {v.dataset.n_rows:>6} rows  {source}  {v.created_at:%F %R}"
        )
    return 0


def run_show(args: argparse.Namespace) -> int:
    from studio.datasets import load_dataset  # lazy: keeps `studio --help` fast
    from studio.services import create_services  # lazy: keeps `studio --help` fast

    services = create_services()
    version = _version(services.store, args.name)
    print(f"{version.ref} ({version.kind}, {version.dataset.n_rows} rows): {version.dataset.path}")
    print("lineage: " + json.dumps(version.lineage, ensure_ascii=False))
    for row in load_dataset(version.dataset.path, policy=services.policy).rows[: args.rows]:
        print(json.dumps(row, ensure_ascii=False)[:400])
    return 0


def run_export(args: argparse.Namespace) -> int:
    from studio.services import create_services  # lazy: keeps `studio --help` fast

    version = _version(create_services().store, args.name)
    shutil.copyfile(version.dataset.path, Path(args.output))
    print(args.output)
    return 0
