"""Arguments more than one sub-command takes: argparse `type=` callables and the options built
from them."""

from __future__ import annotations

import argparse


def column_mapping(text: str) -> tuple[str, str]:
    """VARIABLE=COLUMN: feed a data column to a template variable."""
    variable, sep, column = text.partition("=")
    if not sep or not variable.strip() or not column.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not VARIABLE=COLUMN")
    return variable.strip(), column.strip()


def add_column_map(parser: argparse.ArgumentParser) -> None:
    """`--map VARIABLE=COLUMN` (repeatable), read into `column_map` as (variable, column) pairs."""
    parser.add_argument(
        "--map",
        dest="column_map",
        action="append",
        type=column_mapping,
        metavar="VARIABLE=COLUMN",
        help="feed a data column to a template variable",
    )
