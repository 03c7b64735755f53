"""Self-Instruct seed tasks (instruction + instances) flattened to instruction/input/output rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from studio.datasets.bounds import _Budget
from studio.datasets.errors import DatasetError, _Bad
from studio.datasets.json_formats import _jsonl_objects
from studio.datasets.reading import _byte_limit, _decode, _read_bytes
from studio.datasets.table import Dataset, _rows_hash
from studio.hosting import HostingPolicy


def is_self_instruct(dataset: Dataset) -> bool:
    """Whether a loaded JSONL file has the Self-Instruct seed-task shape (instruction + instances,
    no output column): then flatten_self_instruct gives one row per instance."""
    columns = dataset.columns
    shaped = "instruction" in columns and "instances" in columns and "output" not in columns
    return shaped and dataset.format == "jsonl"


def flatten_self_instruct(
    path: str | Path,
    name: str | None = None,
    *,
    policy: HostingPolicy,
    max_bytes: int | None = None,
) -> Dataset:
    """Self-Instruct seed tasks (JSONL with instruction + instances) as instruction/input/output.

    One row per instance, alpaca style; a missing or null input becomes "". The hash is that of
    the flattened rows (as for in-memory data), not of the file: the same file loaded as plain
    JSONL has different rows, and a store keyed by content hash must tell the two apart. The
    path and the sizes are checked as by load_dataset.
    """
    resolved = policy.check_data_path(path)
    file = Path(path)
    source = policy.shown_path(path)
    data = _read_bytes(resolved, source, _byte_limit(policy, max_bytes))
    budget = _Budget(policy.limits)
    columns = ["instruction", "input", "output"]
    try:
        tasks = _jsonl_objects(_decode(data), budget)
        rows = [row for line, task in tasks for row in _self_instruct_rows(line, task)]
        budget.check_table(len(rows), len(columns))
    except _Bad as bad:
        raise DatasetError(source, bad.problem, bad.fix, bad.line) from None
    if not rows:
        raise DatasetError(source, "is empty: it has no tasks", "add tasks to the file")
    return Dataset(
        name=name or file.stem,
        path=str(file),
        format="jsonl",
        columns=columns,
        rows=rows,
        content_hash=_rows_hash(columns, rows),
        shown=source,
    )


def _self_instruct_rows(line: int, task: dict[str, Any]) -> list[dict[str, Any]]:
    fix = 'each task needs "instruction" and "instances": [{"input": ..., "output": ...}]'
    instruction = task.get("instruction")
    instances = task.get("instances")
    if not isinstance(instruction, str) or not isinstance(instances, list) or not instances:
        raise _Bad("task lacks a text 'instruction' or a non-empty 'instances' list", fix, line)
    rows = []
    for position, instance in enumerate(instances, start=1):
        if not isinstance(instance, dict) or instance.get("output") is None:
            raise _Bad(f"instance {position} has no 'output'", fix, line)
        text = instance.get("input")
        rows.append({"instruction": instruction, "input": text or "", "output": instance["output"]})
    return rows
