"""`studio models` and `studio prepare`: the models you can use, and loading one ahead of time."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_models_parser(sub: Any) -> None:
    models = sub.add_parser("models", help="list the models you can use, with source, size, state")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=run_models)
    prepare = sub.add_parser(
        "prepare", help="convert (GGUF) and load a model once, so the UI's first use is fast"
    )
    prepare.add_argument("spec", help="bundled alias, HF id, local folder or .gguf file")
    prepare.add_argument("--quantization", choices=["none", "8bit", "4bit"], default="none")
    prepare.set_defaults(func=run_prepare)


def run_models(args: argparse.Namespace) -> int:
    # lazy: the model catalog and settings (pydantic) stay out of `studio --help`
    from studio.models.catalog import human_size, list_models
    from studio.settings import get_settings

    settings = get_settings()
    entries = list_models(settings.models_dir, settings.adapters_dir)
    if args.json:
        print(
            json.dumps([dict(entry.__dict__, usable=entry.usable) for entry in entries], indent=2)
        )
        return 0
    print(f"{'MODEL':<26} {'SOURCE':<10} {'SIZE':>8}  {'STATE':<22} NOTE")
    for e in entries:
        size = human_size(e.size_bytes)
        print(f"{e.spec:<26} {e.source:<10} {size:>8}  {e.state:<22} {e.note}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    # lazy: the model loader and settings (pydantic) stay out of `studio --help`
    from studio.models.loading import LoadRequest, load_model
    from studio.settings import get_settings

    loaded = load_model(
        LoadRequest(args.spec, quantization=args.quantization),
        get_settings(),
        lambda message: print(message, file=sys.stderr),
    )
    print(
        f"{loaded.source.spec}: ready at {loaded.location} "
        f"({loaded.footprint_bytes / 2**20:.0f} MiB in memory as {args.quantization}, "
        f"loaded in {loaded.load_seconds:.1f} s)"
    )
    return 0
