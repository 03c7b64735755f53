"""What the Data tab shows: built pairs as a review table (keep and swap are editable), the
generation runs pairs can come from, and the written dataset versions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from studio.data.pairs import Pair
from studio.data.synthetic_review import Edit
from studio.store import ComparisonRun, DatasetVersion

PAIR_COLUMNS = [
    "#",
    "keep",
    "swap",
    "example",
    "chosen from",
    "chosen",
    "rejected from",
    "rejected",
]
CellType = Literal["str", "number", "bool", "date", "markdown", "html"]
PAIR_TYPES: list[CellType] = ["number", "bool", "bool", "number", "str", "str", "str", "str"]
VERSION_COLUMNS = ["dataset", "kind", "rows", "made from", "rule", "created", "file"]


def _short(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def pair_rows(pairs: Sequence[Pair]) -> list[list[Any]]:
    """One review row per pair: every pair kept and unswapped until the reviewer says so."""
    return [
        [i, True, False, p.example_index, p.chosen_from, _short(p.chosen), p.rejected_from,
         _short(p.rejected)]
        for i, p in enumerate(pairs)
    ]  # fmt: skip


def review_of(rows: Sequence[Sequence[Any]]) -> tuple[frozenset[int], frozenset[int]]:
    """(dropped, swapped) pair positions from the edited review table."""
    drop, swap = set(), set()
    for row in rows:
        position = int(row[0])
        if not _truthy(row[1]):
            drop.add(position)
        if _truthy(row[2]):
            swap.add(position)
    return frozenset(drop), frozenset(swap)


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "x", "✓")
    return bool(value)


def run_choices(runs: Sequence[ComparisonRun]) -> list[tuple[str, str]]:
    """Generation runs, newest first, as (label, c<N>) choices."""
    return [
        (f"c{r.id} · {r.name or 'comparison'} · {len(r.configs)} configs · {r.status}", f"c{r.id}")
        for r in runs
        if r.scoring == "generate"
    ]


def rule_choices(run: ComparisonRun | None) -> list[str]:
    """The rules a run supports: its metric, and its judge if it was judged."""
    if run is None:
        return []
    rules = [str(run.config.get("metric") or "exact")]
    return [*rules, "judge"] if run.judge else rules


def version_rows(versions: Sequence[DatasetVersion]) -> list[list[Any]]:
    return [
        [v.ref, v.kind, v.dataset.n_rows, v.lineage.get("source", ""), v.lineage.get("rule", ""),
         f"{v.created_at:%Y-%m-%d %H:%M}", v.dataset.path or ""]
        for v in versions
    ]  # fmt: skip


def built_note(n: int, run: str, rule: str) -> str:
    if n == 0:
        return f"No pairs: no example of {run} has answers that {rule} tells apart."
    return (
        f"{n} pairs from {run} by {rule}. Untick **keep** to leave a pair out, tick **swap** "
        "to reverse chosen and rejected, then save."
    )


def saved_note(version: DatasetVersion) -> str:
    return (
        f"Saved **{version.ref}**: {version.dataset.n_rows} pairs → `{version.dataset.path}`. "
        "Use the file as preference data in the Tune tab."
    )


CANDIDATE_COLUMNS = ["id", "keep", "status", "reason", "ROUGE-L", "instruction", "input", "output"]
CANDIDATE_TYPES: list[CellType] = ["str", "bool", "str", "str", "number", "str", "str", "str"]
EDITABLE = ("instruction", "input", "output")


def candidate_rows(candidates: Sequence[Any]) -> list[list[Any]]:
    """One review row per generated candidate: kept if the filters accepted it; the texts are
    editable (what is saved is what the table says)."""
    return [
        [c.id, c.accepted, c.status, c.reason or "", round(c.rouge_l, 3), c.instruction,
         c.input or "", c.output or ""]
        for c in candidates
    ]  # fmt: skip


def candidate_edits(rows: Sequence[Sequence[Any]], candidates: Sequence[Any]) -> list[Edit]:
    """The reviewer's edits: a changed keep box, and any text that differs from the generated."""
    by_id = {c.id: c for c in candidates}
    edits = []
    for row in rows:
        c = by_id.get(str(row[0]))
        if c is None:
            continue
        keep = _truthy(row[1])
        texts = {
            name: (str(value) if str(value) != (getattr(c, name) or "") else None)
            for name, value in zip(EDITABLE, row[5:8], strict=True)
        }
        accept = None if keep == c.accepted else keep
        if accept is not None or any(v is not None for v in texts.values()):
            edits.append(Edit(c.id, accept, **texts))
    return edits


def generation_status(accepted: int, target: int, candidates: int, note: str = "") -> str:
    line = f"**{accepted} / {target}** accepted of {candidates} candidates"
    return f"{line} · {note}" if note else line
