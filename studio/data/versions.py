"""Datasets the studio writes (preference pairs, synthetic data), versioned in the store.

`save_rows` writes the rows as JSONL under the studio's home (`<home>/datasets/<name>/`, named by
content hash), registers the file as a dataset by that hash and records it as the next version
of its name with its lineage, all or nothing: a failure removes the file it wrote. The files
are data like any other: Prompts, Compare and Tune read them by path, and a hosted studio lets
visitors read them (HostingPolicy.written_dir) though not write them.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from studio.datasets import load_dataset
from studio.hosting import HostingPolicy
from studio.store import DatasetVersion, Store
from studio.templates.schema import NAME_PATTERN


def save_rows(
    store: Store,
    policy: HostingPolicy,
    directory: Path,
    name: str,
    kind: str,
    rows: Sequence[dict[str, Any]],
    lineage: dict[str, Any],
) -> DatasetVersion:
    """Write `rows` as the next version of dataset `name` (JSONL under `directory`/name/),
    register it and record its lineage; on any failure nothing is left on disk or in the store."""
    if not NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"{name!r} is not a valid dataset name. Fix: use 1-64 lowercase letters, digits, "
            "'.', '_' or '-', starting with a letter or digit, e.g. 'tickets-pairs'"
        )
    if not rows:
        raise ValueError(
            f"no rows to save as {name!r}: the rule kept nothing. Fix: lower the margin, or use "
            "a run with more examples, samples or configurations"
        )
    folder = directory / name
    folder.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".writing-", suffix=".jsonl")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    path, existed = Path(tmp), False
    try:
        data = load_dataset(path, policy=policy)
        final = folder / f"{data.content_hash[:16]}.jsonl"
        existed = final.exists()
        os.replace(path, final)
        path = final
        record = store.register_dataset(
            name, str(final), "jsonl", data.content_hash, len(data), data.columns
        )
        return store.save_dataset_version(name, kind, record.id, lineage)
    except BaseException:
        if path.name.startswith(".writing-") or not existed:
            path.unlink(missing_ok=True)
        raise
