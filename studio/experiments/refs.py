"""Run references: one id scheme for three id spaces.

Comparison runs, tuning runs and adapters are numbered separately in the store, so a reference
carries its kind as a prefix: ``c7`` (comparison run 7), ``t3`` (tuning run 3), ``a2`` (adapter
2). A bare number means a comparison run, as `studio compare --resume 7` always has.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

KINDS = {"c": "comparison", "t": "tuning", "a": "adapter"}
PREFIXES = {kind: prefix for prefix, kind in KINDS.items()}
_REF = re.compile(r"^\s*#?([cta]?)(\d{1,12})\s*$", re.IGNORECASE)


@dataclass(frozen=True, order=True)
class RunRef:
    """A run (or adapter) by kind and id; str() gives its reference, e.g. ``t3``."""

    kind: str
    id: int

    def __str__(self) -> str:
        return f"{PREFIXES[self.kind]}{self.id}"


def parse_ref(text: str | int) -> RunRef:
    """``c7`` / ``t3`` / ``a2`` / ``7`` -> RunRef; ValueError naming the accepted forms."""
    match = _REF.match(str(text))
    if match is None:
        raise ValueError(
            f"'{text}' is not a run id: use c<N> for a comparison run, t<N> for a tuning run, "
            "a<N> for an adapter (a bare number means a comparison run)"
        )
    prefix, number = match.groups()
    return RunRef(KINDS[(prefix or "c").lower()], int(number))


def parse_refs(texts: list[str] | tuple[str, ...]) -> list[RunRef]:
    """Several references, in order, duplicates dropped; commas separate them too."""
    parts = [part for text in texts for part in str(text).replace(",", " ").split()]
    return list(dict.fromkeys(parse_ref(part) for part in parts))
