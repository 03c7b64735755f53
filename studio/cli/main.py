"""`studio` command line entry point: the parser of every sub-command, and `main`.

Each sub-command lives in its own module here and adds itself with `add_<command>_parser`; those
modules import only the standard library at module level, so `studio --help` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from studio.cli.adapters import add_adapters_parser
from studio.cli.compare import add_compare_parser
from studio.cli.data import add_data_parser
from studio.cli.models import add_models_parser
from studio.cli.quickstart import add_quickstart_parser
from studio.cli.runs import add_runs_parser
from studio.cli.serve import add_serve_parser
from studio.cli.serve_model import add_serve_model_parser
from studio.cli.templates import add_templates_parser
from studio.cli.tune import add_tune_parser
from studio.runtime.openmp import use_passive_waits

COMMANDS = (
    add_serve_parser,
    add_models_parser,
    add_templates_parser,
    add_compare_parser,
    add_runs_parser,
    add_data_parser,
    add_tune_parser,
    add_adapters_parser,
    add_serve_model_parser,
    add_quickstart_parser,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="studio",
        description="Instruct Studio: prompt templates, comparisons and QLoRA tuning.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add_parser in COMMANDS:
        add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    use_passive_waits()  # before any command imports torch (see studio/runtime/openmp.py)
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
        if _user_error(exc):
            print(f"studio: error: {exc}", file=sys.stderr)
            return 2
        raise


def _user_error(exc: Exception) -> bool:
    """Every user-facing error (templates, datasets, settings, policy) is a ValueError subclass;
    models and the store have their own."""
    # lazy: the store imports sqlalchemy, which `studio --help` must not load
    from studio.models.errors import ModelError
    from studio.settings import SettingsError
    from studio.store import StoreError

    return isinstance(exc, (ModelError, SettingsError, StoreError, ValueError))


if __name__ == "__main__":
    sys.exit(main())
