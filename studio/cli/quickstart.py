"""`studio quickstart`: the Start here loop from the command line, one step after the other.

Compare 0 vs 4 shots on the sample tickets, tune the sample adapter, compare base against adapter:
the same shipped configs, engines and store as the Start here tab and as running `studio compare`
and `studio tune` by hand with those configs.
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.cli.follow import follow_comparison, queue_tuning, watch_tuning

if TYPE_CHECKING:
    from studio.services import Services
    from studio.store import TuningRun


def add_quickstart_parser(sub: Any) -> None:
    parser = sub.add_parser(
        "quickstart",
        help="run the Start here loop on the sample tickets: compare, tune, compare again",
        description="Step 1: studio compare --config studio/samples/start-compare.yaml; step 2: "
        "studio tune --config studio/samples/start-tune.yaml; step 3: studio compare --config "
        "studio/samples/start-compare-adapter.yaml. The adapter is retrained in place.",
    )
    parser.add_argument("--limit", type=int, help="score only the first N test tickets")
    parser.add_argument("--max-steps", type=int, help="train fewer steps than start-tune.yaml")
    parser.set_defaults(func=run_quickstart)


def run_quickstart(args: argparse.Namespace) -> int:
    # lazy: the sample configs and the engines pull in the store (sqlalchemy)
    from studio.quickstart import sample
    from studio.services import create_services

    if args.limit is not None and args.limit < 1:
        raise ValueError("--limit: give a number of tickets of at least 1")
    if args.max_steps is not None and args.max_steps < 1:
        raise ValueError("--max-steps: give a number of steps of at least 1")
    services = create_services()
    print(f"Step 1/3: {sample.STEPS[0].command}")
    if _compare(services, sample.COMPARE_CONFIG, args.limit) != "completed":
        return 1
    print(f"\nStep 2/3: {sample.STEPS[1].command}")
    run = _tune(services, args.max_steps)
    print(f"run #{run.id}: {run.status}" + (f" — {run.error}" if run.error else ""))
    if run.status != "completed":
        return 1
    print(f"adapter: {run.adapter_path}")
    print(f"\nStep 3/3: {sample.STEPS[2].command}")
    if _compare(services, sample.ADAPTER_COMPARE_CONFIG, args.limit) != "completed":
        return 1
    print(f"\nFind it all again: {sample.STEPS[3].command} (or the Experiments tab)")
    return 0


def _compare(services: Services, path: Path, limit: int | None) -> str:
    # lazy: summaries and the sample configs pull in the store (sqlalchemy)
    from studio.compare.summary import format_table, summarize_run
    from studio.quickstart import sample

    config = sample.compare_config(path)
    if limit is not None:
        config = config.model_copy(update={"limit": limit})
    stop = threading.Event()
    run_id, status = follow_comparison(services.comparisons.run(config, stop), stop)
    if run_id is not None:
        summaries = summarize_run(services.store, run_id)
        print(f"run #{run_id}: {status}")
        print(format_table(summaries))
        print(f"mean accuracy — {sample.headline_text(summaries)}")
    return status


def _tune(services: Services, max_steps: int | None) -> TuningRun:
    from studio.quickstart import sample  # lazy: the sample configs pull in the store

    config = sample.tune_config()
    if max_steps is not None:
        training = config.training.model_copy(update={"max_steps": max_steps})
        config = config.model_copy(update={"training": training})
    check = services.tuning.check(config, overwrite=True)
    print(check.prepared.summary())
    print(f"{check.total_steps} optimizer steps → {check.adapter_dir}")
    run = queue_tuning(services.tuning, check)
    return watch_tuning(services.tuning, run.id)
