"""A run's detail as plain text, for `studio runs show`."""

from __future__ import annotations

import yaml

from studio.compare.summary import format_table
from studio.experiments.detail import RunDetail

LOG_LINES = 20


def lineage_lines(detail: RunDetail) -> list[str]:
    lineage = detail.lineage
    lines = [
        f"template: {v.template_name}@v{v.version} (sha256 {v.content_hash[:12]})"
        for v in lineage.templates
    ]
    if lineage.dataset:
        data = lineage.dataset
        lines.append(f"dataset: {data.name} ({data.n_rows} rows, sha256 {data.content_hash[:12]})")
    if lineage.shot_pool:
        pool = lineage.shot_pool
        lines.append(f"shot pool: {pool.name} (sha256 {pool.content_hash[:12]})")
    lines += [f"base model: {m}" for m in lineage.base_models]
    lines += [f"adapter: {a}" for a in lineage.adapters]
    if lineage.seeds:
        lines.append(f"seeds: {', '.join(map(str, lineage.seeds))}")
    return lines


def detail_text(detail: RunDetail) -> str:
    entry = detail.entry
    parts = [
        f"{entry.ref} · {entry.name} · {entry.kind} · {entry.status}",
        f"created {entry.created_at:%Y-%m-%d %H:%M:%S} UTC · {entry.progress}",
        entry.headline.text,
    ]
    if entry.tags:
        parts.append(f"tags: {', '.join(entry.tags)}")
    if entry.note:
        parts.append(f"note: {entry.note}")
    if detail.error:
        parts.append(f"error: {detail.error}")
    parts += ["", "Lineage", *(f"  {line}" for line in lineage_lines(detail))]
    if detail.summaries:
        parts += ["", "Metrics (95% bootstrap CI)", format_table(detail.summaries)]
    if detail.final_metrics:
        parts += ["", "Metrics"]
        parts += [f"  {key}: {value}" for key, value in detail.final_metrics.items()]
    config = yaml.safe_dump(detail.config, sort_keys=False, allow_unicode=True).rstrip()
    parts += ["", "Config", *(f"  {line}" for line in config.splitlines())]
    for version in detail.lineage.templates:
        parts += [
            "",
            f"Template {version.template_name}@v{version.version}",
            version.content.rstrip(),
        ]
    if detail.log:
        parts += ["", f"Log (last {LOG_LINES} lines)", *detail.log.splitlines()[-LOG_LINES:]]
    return "\n".join(parts)
