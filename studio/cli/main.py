"""`studio` command line: serve the UI, list and prepare models (heavy imports per command)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence


def _serve(args: argparse.Namespace) -> int:
    from studio.ui import launch

    launch(host=args.host, port=args.port, share=args.share, inbrowser=args.inbrowser)
    return 0


def _models(args: argparse.Namespace) -> int:
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


def _prepare(args: argparse.Namespace) -> int:
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Instruct Studio: prompt templates, comparisons and QLoRA tuning.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="serve the web UI (127.0.0.1:7860 by default)")
    serve.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="interface to bind (env GRADIO_SERVER_NAME; 0.0.0.0 for all)",
    )
    serve.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        help="port (env GRADIO_SERVER_PORT)",
    )
    serve.add_argument("--share", action="store_true", help="create a public gradio.live link")
    serve.add_argument("--inbrowser", action="store_true", help="open the UI in a browser")
    serve.set_defaults(func=_serve)
    models = sub.add_parser("models", help="list the models you can use, with source, size, state")
    models.add_argument("--json", action="store_true", help="print JSON instead of a table")
    models.set_defaults(func=_models)
    prepare = sub.add_parser(
        "prepare", help="convert (GGUF) and load a model once, so the UI's first use is fast"
    )
    prepare.add_argument("spec", help="bundled alias, HF id, local folder or .gguf file")
    prepare.add_argument("--quantization", choices=["none", "8bit", "4bit"], default="none")
    prepare.set_defaults(func=_prepare)
    from studio.cli.compare import add_compare_parser

    add_compare_parser(sub)
    from studio.cli.runs import add_runs_parser

    add_runs_parser(sub)
    from studio.cli.tune import add_tune_parser

    add_tune_parser(sub)
    from studio.cli.adapters import add_adapters_parser

    add_adapters_parser(sub)
    from studio.cli.quickstart import add_quickstart_parser

    add_quickstart_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from studio.runtime.openmp import use_passive_waits

    use_passive_waits()  # before any command imports torch (see studio/openmp.py)
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except RecursionError:  # a JSON or YAML input nested thousands of levels deep
        print(
            "studio: error: an input file is nested too deeply to read (thousands of levels of "
            "lists or mappings). Fix: flatten the file",
            file=sys.stderr,
        )
        return 2
    except Exception as exc:  # a user-facing error: print its message, not a traceback
        from studio.models.errors import ModelError
        from studio.settings import SettingsError
        from studio.store import StoreError

        # Every user-facing error (templates, datasets, settings) is a ValueError subclass.
        if isinstance(exc, (ModelError, SettingsError, StoreError, ValueError)):
            print(f"studio: error: {exc}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
