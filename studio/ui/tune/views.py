"""Tune tab: what Check shows before anything is queued: the data report, the memory estimate
next to what the device has, and the exact training strings with their masked (prompt) and
trained parts.

No gradio here: every function takes the engine's records (LaunchCheck, PreparedData,
MemoryEstimate, TrainExample) and returns HTML, with every piece of user text escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from studio.models.errors import ModelError
from studio.tuning.data import PreparedData, TrainExample, packed_rows
from studio.tuning.jobs import LaunchCheck
from studio.tuning.memory import GIB, MemoryEstimate
from studio.tuning.trainer import evaluation_summary

PREVIEW_ROWS = 3
ERROR_KINDS = {
    "TuneConfigError": "Invalid setting",
    "TuneDataError": "The data cannot be trained on",
    "DatasetError": "The data file cannot be read",
    "TemplateError": "Template problem",
    "AdapterError": "Adapter problem",
    "StoreError": "Store problem",
    "PolicyRefusal": "Not allowed on this studio",
}
_LEGEND = (
    '<div class="tune-legend"><span class="tune-masked">masked prompt (no loss)</span> '
    '<span class="tune-trained">trained (loss)</span></div>'
)
EMPTY_REPORT = '<p class="tune-empty">Check the settings to see the data report here.</p>'
EMPTY_PREVIEW = (
    '<p class="tune-empty">Check the settings to see the exact training strings of the first '
    "rows.</p>"
)


def status_html(message: str, kind: str = "info") -> str:
    """A one-block status: kind is ok, info or error (the colour)."""
    return f'<div class="tune-status" data-kind="{escape(kind)}">{escape(message)}</div>'


def error_html(exc: BaseException) -> str:
    """An engine error as the status box shows it: what kind of problem, then its message."""
    name = type(exc).__name__
    kind = ERROR_KINDS.get(name, "Model problem" if isinstance(exc, ModelError) else "")
    kind = kind or f"Unexpected error ({name})"
    return (
        f'<div class="tune-status" data-kind="error"><strong>{escape(kind)}</strong>'
        f'<pre class="tune-error-text">{escape(str(exc))}</pre>'
        "<em>Nothing was queued.</em></div>"
    )


def gib(size: int | float) -> str:
    return f"{size / GIB:.2f} GiB"


def ready_text(check: LaunchCheck, overwrite: bool) -> str:
    prepared = check.prepared
    replaced = " (replaces the existing folder)" if overwrite and check.adapter_dir.exists() else ""
    return (
        f"✓ Ready to launch: {len(prepared.train)} train / {len(prepared.eval)} eval rows, "
        f"{check.total_steps} optimizer steps → adapters/{check.config.name}{replaced}."
    )


def _epochs_text(check: LaunchCheck) -> str:
    training = check.config.training
    per_step = training.batch_size * training.grad_accumulation
    rows = max(len(check.prepared.train), 1)
    seen = check.total_steps * per_step / rows
    source = "max steps" if training.max_steps else f"{training.epochs:g} epoch(s)"
    return (
        f"{check.total_steps} ({source}; {training.batch_size} rows × {training.grad_accumulation}"
        f" accumulation = {per_step} rows a step; ≈ {seen:.2f} passes over the train rows)"
    )


def _data_rows(check: LaunchCheck) -> list[tuple[str, str]]:
    prepared = check.prepared
    assert isinstance(prepared, PreparedData)  # the tab's form has no preference method yet
    stats, template = prepared.stats, prepared.template
    used = f" through template '{template.name}' ({template.mode} mode)" if template else ""
    truncated = (
        f"{len(stats.truncated_rows)} rows cut at max_length: "
        + ", ".join(map(str, stats.truncated_rows[:10]))
        + (", …" if len(stats.truncated_rows) > 10 else "")
        if stats.truncated_rows
        else "none"
    )
    dataset = prepared.dataset
    return [
        ("Format", f"{prepared.format}{used}"),
        ("Data", f"{dataset.source} ({stats.n} rows, hash {dataset.content_hash[:12]})"),
        ("Split", f"{len(prepared.train)} train, {len(prepared.eval)} eval"),
        (
            "Tokens per row",
            f"min {stats.min} · median {stats.median:g} · max {stats.max} "
            f"(max_length {stats.max_length})",
        ),
        ("Truncated", truncated),
        ("Loss on", "answers only (prompt masked)"
         if check.config.data.completion_only_loss else "every token (prompt included)"),
        ("Optimizer steps", _epochs_text(check)),
        ("Evaluation", evaluation_summary(check.config, prepared.train, prepared.eval)),
        ("Base model", f"{check.config.model.spec} ({check.config.model.quantization})"),
        ("Adapter", f"adapters/{check.config.name} → {check.adapter_dir}"),
    ]  # fmt: skip


def _table(rows: Sequence[tuple[str, str]], css: str) -> str:
    body = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in rows)
    return f'<table class="{css}">{body}</table>'


def warnings_html(prepared: PreparedData) -> str:
    if not prepared.warnings:
        return '<p class="tune-ok">No warnings about the data.</p>'
    items = "".join(f"<li>{escape(str(warning))}</li>" for warning in prepared.warnings)
    return f'<div class="tune-warnings"><strong>⚠ Warnings</strong><ul>{items}</ul></div>'


def memory_html(memory: MemoryEstimate | None) -> str:
    """The estimate's parts as bars (share of the total) and the total next to what is free."""
    if memory is None:
        return (
            '<div class="tune-memory"><p class="tune-empty">No memory estimate: the base '
            "model's configuration could not be read.</p></div>"
        )
    total = max(memory.total, 1)
    rows = "".join(
        f'<tr><th>{escape(name)}</th><td class="tune-mem-size">{gib(size)}</td>'
        f'<td class="tune-mem-bar"><span style="width:{100 * size / total:.1f}%"></span></td></tr>'
        for name, size in memory.parts.items()
    )
    have = "unknown" if memory.available is None else gib(memory.available)
    verdict = {True: "fits", False: "does NOT fit", None: "cannot tell"}[memory.fits]
    state = {True: "fits", False: "no-fit", None: "unknown"}[memory.fits]
    return (
        f'<div class="tune-memory" data-fits="{state}"><strong>Memory estimate</strong>'
        f'<table class="tune-mem-table">{rows}</table>'
        f'<p class="tune-mem-total">Total ≈ <b>{gib(memory.total)}</b>; '
        f"{escape(memory.device)} has {have} available — <b>{verdict}</b></p></div>"
    )


def report_html(check: LaunchCheck) -> str:
    """The whole data report: settings and data, warnings, memory."""
    return (
        '<div class="tune-report">'
        + _table(_data_rows(check), "tune-kv")
        + warnings_html(check.prepared)  # type: ignore[arg-type]  # sft only (see _data_rows)
        + memory_html(check.memory)
        + "</div>"
    )


def sequence_html(segments: Sequence[tuple[str, bool]]) -> str:
    """The exact text of one row: masked pieces grey, trained pieces highlighted; newlines
    marked with a ↵ that copying leaves out."""
    return f'<pre class="tune-seq">{_pieces(segments)}</pre>'


def _pieces(segments: Sequence[tuple[str, bool]]) -> str:
    parts = []
    for piece, trained in segments:
        css = "tune-trained" if trained else "tune-masked"
        shown = escape(piece).replace("\n", '<span class="tune-nl">↵</span>\n')
        parts.append(f'<span class="{css}">{shown}</span>')
    return "".join(parts)


def packed_html(sequences: Sequence[Sequence[TrainExample]], max_length: int) -> str:
    """Packed sequences as the model sees them: several rows end to end in one sequence, each
    starting at a boundary mark (positions restart there and attention stays within the row)."""
    if not sequences:
        return '<p class="tune-empty">No training rows.</p>'
    blocks = []
    for number, rows in enumerate(sequences, start=1):
        tokens = sum(row.n_tokens for row in rows)
        trained = sum(row.completion_tokens for row in rows)
        head = (
            f"packed sequence {number} · {len(rows)} rows "
            f"({', '.join(str(row.row) for row in rows)}) · {tokens} of {max_length} tokens, "
            f"{trained} trained"
        )
        body = "".join(
            f'<span class="tune-boundary" style="font-weight:bold">⟦row {row.row}⟧</span>'
            + _pieces(row.segments)
            for row in rows
        )
        blocks.append(
            f'<div class="tune-example"><div class="tune-example-head">{escape(head)}</div>'
            f'<pre class="tune-seq">{body}</pre></div>'
        )
    return f'<div class="tune-preview">{_LEGEND}{"".join(blocks)}</div>'


def example_html(example: TrainExample) -> str:
    cut = " · <b>truncated</b>: the end is not trained" if example.truncated else ""
    return (
        f'<div class="tune-example"><div class="tune-example-head">row {example.row} · '
        f"{example.n_tokens} tokens: {example.prompt_tokens} masked, "
        f"{example.completion_tokens} trained{cut}</div>{sequence_html(example.segments)}</div>"
    )


def preview_html(examples: Sequence[TrainExample], n: int = PREVIEW_ROWS) -> str:
    """The first n training rows exactly as the model sees them."""
    if not examples:
        return '<p class="tune-empty">No training rows.</p>'
    return (
        f'<div class="tune-preview">{_LEGEND}'
        + "".join(example_html(e) for e in examples[:n])
        + "</div>"
    )


def training_preview(check: LaunchCheck) -> str:
    """The training strings Check shows: the first rows, or with packing the first packed
    sequences."""
    prepared, max_length = check.prepared, check.config.data.max_length
    if not isinstance(prepared, PreparedData):  # a preference run: its pairs as text
        return f'<pre class="tune-seq">{escape(prepared.preview(1))}</pre>'
    if check.config.training.packing:
        return packed_html(packed_rows(prepared.train, max_length, PREVIEW_ROWS), max_length)
    return preview_html(prepared.train)
