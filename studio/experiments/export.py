"""Exporting runs as files: per-example rows (each with its exact prompt) as CSV, JSON or JSONL.

A comparison run gives one row per scored example and config; a tuning run one row per logged
step (its metric points); an adapter one row of final metrics. JSON adds, before the rows, each
run's headline, full config and lineage. Files are written to a temporary name and renamed, so a
failed export never leaves half a file.
"""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from studio.experiments.detail import RunDetail, open_run
from studio.experiments.diff import metric_row
from studio.experiments.refs import RunRef
from studio.store import Store

FORMATS = ("csv", "json", "jsonl")


def run_rows(detail: RunDetail) -> list[dict[str, Any]]:
    """The exported rows of one run (see the module docstring)."""
    ref = str(detail.ref)
    if detail.ref.kind == "comparison":
        return detail.examples
    if detail.ref.kind == "tuning":
        return [
            {
                "run": ref,
                "step": p.step,
                "epoch": p.epoch,
                "loss": p.loss,
                "eval_loss": p.eval_loss,
                "learning_rate": p.learning_rate,
                "grad_norm": p.grad_norm,
                "tokens_per_second": p.tokens_per_second,
            }
            for p in detail.points
        ]
    return [{"run": ref, **detail.final_metrics}]


def lineage_dict(detail: RunDetail) -> dict[str, Any]:
    lineage = detail.lineage
    return {
        "templates": [
            {
                "name": v.template_name,
                "version": v.version,
                "content_hash": v.content_hash,
                "text": v.content,
            }
            for v in lineage.templates
        ],
        "dataset": _dataset(lineage.dataset),
        "shot_pool": _dataset(lineage.shot_pool),
        "base_models": list(lineage.base_models),
        "adapters": list(lineage.adapters),
        "seeds": list(lineage.seeds),
        "calibrations": lineage.calibrations,
        "judge": lineage.judge,
        "sampling": lineage.sampling,
    }


def render(details: list[RunDetail], fmt: str) -> str:
    """The export text of `details` in `fmt` (csv, json or jsonl)."""
    if fmt not in FORMATS:
        raise ValueError(f"export format must be one of {', '.join(FORMATS)}; got {fmt!r}")
    rows = [row for detail in details for row in run_rows(detail)]
    if fmt == "jsonl":
        return "".join(json.dumps(row, ensure_ascii=False, default=str) + "\n" for row in rows)
    if fmt == "json":
        runs = [
            {**metric_row(d), "tags": list(d.entry.tags), "note": d.entry.note,
             "created_at": d.entry.created_at.isoformat(), "config": d.config,
             "lineage": lineage_dict(d), "error": d.error}
            for d in details
        ]  # fmt: skip
        return json.dumps({"runs": runs, "rows": rows}, indent=2, ensure_ascii=False, default=str)
    return _csv(rows)


def export_runs(store: Store, refs: list[RunRef], fmt: str, path: str | Path) -> int:
    """Write the rows of `refs` to `path`; returns how many rows were written."""
    if not refs:
        raise ValueError("choose at least one run to export")
    details = [open_run(store, ref) for ref in refs]
    text = render(details, fmt)
    write_atomic(Path(path), text.encode("utf-8"))
    return sum(len(run_rows(d)) for d in details)


def write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        staging.write_bytes(data)
        staging.replace(path)
    finally:
        staging.unlink(missing_ok=True)


def _csv(rows: list[dict[str, Any]]) -> str:
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _cell(value) for key, value in row.items()})
    return buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return "" if value is None else value


def _dataset(record: Any) -> dict[str, Any] | None:
    if record is None:
        return None
    return {"name": record.name, "path": record.path, "content_hash": record.content_hash,
            "n_rows": record.n_rows}  # fmt: skip
