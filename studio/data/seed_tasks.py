"""Seed tasks for synthetic data: Self-Instruct's JSONL (id, instruction, instances) as records.

The file is checked as `flatten_self_instruct` checks it (every task has a text instruction and
a non-empty list of instances, each with an output; errors name the file and line), so a bad seed
file is refused before a model is loaded or anything is written. A task without an `id` is named
by its position ("task-3").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.datasets import load_dataset
from studio.datasets.errors import DatasetError
from studio.datasets.self_instruct import flatten_self_instruct
from studio.hosting import HostingPolicy

MIN_SEED_TASKS = 2  # an instruction prompt lists several tasks; one would be a copy exercise


@dataclass(frozen=True)
class SeedTask:
    """One seed task: its id, instruction and first instance (input "" when it takes none)."""

    id: str
    instruction: str
    input: str
    output: str


@dataclass(frozen=True)
class SeedTasks:
    """The seed tasks of one file and the hash of their flattened rows (checked on resume)."""

    path: str
    tasks: tuple[SeedTask, ...]
    content_hash: str


def load_seed_tasks(path: str | Path, policy: HostingPolicy) -> SeedTasks:
    """The seed tasks in a Self-Instruct JSONL file; DatasetError naming the file and line for a
    task without an instruction or instances, PolicyRefusal for a path a visitor may not read."""
    flat = flatten_self_instruct(path, policy=policy)  # checks every task, with line numbers
    data = load_dataset(path, policy=policy)
    source = flat.shown or str(path)
    tasks, seen = [], set()
    for position, row in enumerate(data.rows, start=1):
        first = row["instances"][0]
        task_id = str(row.get("id") or f"task-{position}")
        if task_id in seen:
            raise DatasetError(
                source,
                f"task {position} repeats the id {task_id!r}",
                "give every task its own id (provenance names tasks by id)",
            )
        seen.add(task_id)
        text = first.get("input")
        tasks.append(SeedTask(task_id, row["instruction"].strip(), text or "", first["output"]))
    if len(tasks) < MIN_SEED_TASKS:
        raise DatasetError(
            source,
            f"has {len(tasks)} task; generation needs at least {MIN_SEED_TASKS}",
            "add seed tasks (the original Self-Instruct set has 175)",
        )
    return SeedTasks(str(path), tuple(tasks), flat.content_hash)
