"""`studio data`: datasets the studio writes — preference pairs built from a comparison run,
synthetic instruction data generated from seed tasks — and the versions it keeps of them:
pairs, generate, list, show, export."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path
from typing import Any


def add_data_parser(sub: Any) -> None:
    data = sub.add_parser(
        "data",
        help="datasets the studio writes: preference pairs from runs, synthetic instruction "
        "data; list, show, export",
        description="Datasets the studio writes and versions: preference pairs built from a "
        "comparison run (by its metric or its judge), and synthetic instruction data generated "
        "from seed tasks (Self-Instruct), filtered before use.",
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
    _add_generate_parser(data_sub)
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


# Flags a resumed generation takes from its job file (None = not given on the command line).
_JOB_FLAGS = ("seed_tasks", "model", "mode", "temperature", "top_p", "max_new_tokens", "seed",
              "batch", "rouge_threshold", "patience")  # fmt: skip


def _add_generate_parser(data_sub: Any) -> None:
    gen = data_sub.add_parser(
        "generate",
        help="synthetic instruction data from seed tasks (Self-Instruct), filtered, saved as a "
        "dataset version",
        description="A generator model writes new instructions from seed tasks, then an input "
        "and output for each; near-duplicates (ROUGE-L to the pool) and heuristic failures are "
        "rejected with their reason. Every candidate keeps its prompts, seeds and scores.",
    )
    gen.add_argument("--seed-tasks", metavar="FILE", help="Self-Instruct seed tasks (JSONL)")
    gen.add_argument("--model", metavar="SPEC", help="the generator: any model spec")
    gen.add_argument("--count", type=int, metavar="N", help="accepted candidates to reach")
    gen.add_argument("--output", required=True, metavar="NAME", help="dataset name")
    gen.add_argument("--mode", choices=("completion", "chat"), help="prompt format (completion)")
    gen.add_argument("--temperature", type=float, help="sampling temperature (0.7)")
    gen.add_argument("--top-p", type=float, help="nucleus sampling mass (0.5, as the paper)")
    gen.add_argument("--max-new-tokens", type=int, help="tokens per answer (256)")
    gen.add_argument("--seed", type=int, help="fixes task sampling and generation (0)")
    gen.add_argument("--batch", type=int, metavar="N", help="instruction prompts per round (8)")
    gen.add_argument(
        "--rouge-threshold", type=float, metavar="F", help="reject above this ROUGE-L (0.7)"
    )
    gen.add_argument("--patience", type=int, metavar="N", help="give up after N empty rounds (5)")
    gen.add_argument("--resume", action="store_true", help="continue the job named by --output")
    gen.add_argument("--restart", action="store_true", help="discard that job and start again")
    gen.add_argument(
        "--no-save", action="store_true", help="keep the candidates for review; save nothing"
    )
    gen.set_defaults(func=run_generate)


def _generation_settings(args: argparse.Namespace) -> Any:
    # lazy: pydantic models stay out of `studio --help`
    from pydantic import ValidationError

    from studio.data.synthetic_work import GenerationSettings

    missing = [f for f in ("seed_tasks", "model", "count") if getattr(args, f) is None]
    if missing:
        flags = ", ".join("--" + f.replace("_", "-") for f in missing)
        raise ValueError(f"a new generation needs {flags}. Fix: give them, or add --resume")
    given = {key: getattr(args, key) for key in _JOB_FLAGS[2:] if getattr(args, key) is not None}
    try:
        return GenerationSettings(
            seed_tasks=args.seed_tasks, generator=args.model, count=args.count,
            output=args.output, **given,
        )  # fmt: skip
    except ValidationError as exc:
        named = {"generator": "model"}
        problems = "; ".join(
            f"--{named.get(str(e['loc'][0]), str(e['loc'][0])).replace('_', '-')}: {e['msg']}"
            for e in exc.errors()
        )
        raise ValueError(f"{problems}. Fix: see `studio data generate --help`") from None


def run_generate(args: argparse.Namespace) -> int:
    # lazy: the store, the models and the engine stay out of `studio --help`
    from studio.data.synthetic import SyntheticData
    from studio.data.synthetic_review import save_reviewed
    from studio.services import create_services

    if args.resume:
        given = [f for f in _JOB_FLAGS if getattr(args, f) is not None]
        if given or args.restart:
            flags = ", ".join("--" + f.replace("_", "-") for f in given or ["restart"])
            raise ValueError(
                f"--resume continues with the job's own settings, so {flags} cannot be given "
                "with it. Fix: drop them (--count may change), or start again with --restart"
            )
    settings = None if args.resume else _generation_settings(args)  # checked before any work
    services = create_services()
    directory = services.settings.home / "datasets"
    engine = SyntheticData(services.comparisons.backends, directory)
    if settings is None:
        events = engine.resume(args.output, args.count)
    else:
        events = engine.generate(settings, restart=args.restart)
    finished = _follow_generation(events, args.output)
    if finished is None:
        return 130
    if finished.reason != "reached":
        print(
            f"studio: error: {finished.accepted} of {finished.target} accepted after "
            f"{finished.candidates} candidates: the last rounds found nothing new. Fix: raise "
            "--temperature or --rouge-threshold, use a stronger --model, or --resume to try "
            f"more rounds; the candidates are in {finished.folder}",
            file=sys.stderr,
        )
        return 1
    if args.no_save:
        print(f"{finished.accepted} accepted; kept for review in {finished.folder}")
        return 0
    version = save_reviewed(services.store, services.policy, directory, args.output)
    print(f"{version.ref}: {version.dataset.n_rows} rows from {finished.candidates} candidates")
    print(version.dataset.path)
    return 0


def _follow_generation(events: Any, name: str) -> Any:
    """Drive the job with a progress bar of accepted candidates; its Finished event, or None
    after Ctrl-C (the finished rounds stay in the work folder)."""
    # lazy: tqdm and the engine's events stay out of `studio --help`
    from tqdm import tqdm

    from studio.data.synthetic import Finished, Judged, Stage, Started

    bar = None
    try:
        for event in events:
            if isinstance(event, Started):
                bar = tqdm(total=event.settings.count, initial=event.accepted, unit="row",
                           desc=name, file=sys.stderr)  # fmt: skip
            elif isinstance(event, Stage) and bar is not None:
                bar.set_postfix_str(f"round {event.round}: {event.stage}")
            elif isinstance(event, Judged) and bar is not None and event.candidate.accepted:
                bar.update(1)
            elif isinstance(event, Finished):
                return event
    except KeyboardInterrupt:
        print(
            f"\nstopped: the finished rounds are kept. Continue with `studio data generate "
            f"--output {name} --resume`",
            file=sys.stderr,
        )
        return None
    finally:
        if bar is not None:
            bar.close()
    return None
