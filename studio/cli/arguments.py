"""Argument types more than one sub-command parses: argparse `type=` callables."""

from __future__ import annotations

import argparse


def column_mapping(text: str) -> tuple[str, str]:
    """VARIABLE=COLUMN: feed a data column to a template variable."""
    variable, sep, column = text.partition("=")
    if not sep or not variable.strip() or not column.strip():
        raise argparse.ArgumentTypeError(f"'{text}' is not VARIABLE=COLUMN")
    return variable.strip(), column.strip()
