"""Experiments tab formatting without gradio: the list, a run's detail, the comparison views,
the curves and a re-run's progress.

Every function takes what studio.experiments returns and gives plain values (markdown strings,
pandas frames), so the views are tested on real runs without a browser.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import yaml

from studio.compare.summary import (
    JudgeSummary,
    SamplingSummary,
    format_judges,
    format_sampling,
    paired_text,
)
from studio.experiments.catalog import Entry
from studio.experiments.detail import RunDetail
from studio.experiments.diff import Agreement, RunComparison
from studio.experiments.report import lineage_lines
from studio.ui.common.formatting import estimate_text

LIST_HEADERS = ["id", "kind", "name", "status", "created", "model", "template", "data",
                "headline", "tags"]  # fmt: skip
METRIC_HEADERS = ["run", "name", "kind", "status", "data", "accuracy [95% CI]", "best config",
                  "train loss", "eval loss"]  # fmt: skip
EXAMPLE_HEADERS = ["config", "#", "gold", "prediction", "correct", "prompt (end)"]
SUMMARY_HEADERS = ["config", "model", "template", "shots", "seed", "n", "accuracy [95% CI]"]
EXAMPLE_LIMIT = 500
PROMPT_TAIL = 160
EMPTY_CURVES = pd.DataFrame({"step": pd.Series(dtype="int64"), "loss": pd.Series(dtype="float64"),
                             "run": pd.Series(dtype="str")})  # fmt: skip


NOTHING_OPEN = "Select a run in the list to open it."


def choice_label(entry: Entry) -> str:
    """How a run appears in the selection box: "c3 · shots sweep"."""
    return f"{entry.ref} · {entry.name}"


def list_frame(entries: Sequence[Entry]) -> pd.DataFrame:
    rows = [
        [str(e.ref), e.kind, e.name, e.status, e.created_at.strftime("%Y-%m-%d %H:%M"),
         ", ".join(e.models), ", ".join(e.templates), e.dataset or "", e.headline.text,
         ", ".join(e.tags)]
        for e in entries
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=LIST_HEADERS)


def list_note(entries: Sequence[Entry]) -> str:
    if not entries:
        return "No runs match. Clear the filters, or start a run in Compare or Tune."
    kinds = {
        kind: sum(e.kind == kind for e in entries) for kind in ("comparison", "tuning", "adapter")
    }
    counts = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in kinds.items() if n)
    return f"{len(entries)} shown ({counts}). Select a row to open it; tick runs to compare."


@dataclass(frozen=True)
class JudgedRun:
    """What a judged or repeated-sampling comparison adds to its views: the judge's lineage
    (ComparisonRun.judge: model, template, version, mode, scoring), the run's settings and the
    judge's and sampling's summaries per configuration."""

    ref: str
    judge: dict[str, Any] | None
    config: dict[str, Any]
    judges: list[JudgeSummary] = field(default_factory=list)
    sampling: list[SamplingSummary] = field(default_factory=list)

    @property
    def reference(self) -> int:
        """The configuration (1-based) a pairwise judge compares the others with."""
        return int(self.config.get("reference") or 1)

    @property
    def samples(self) -> int:
        return int(self.config.get("samples") or 1)


def judge_lineage(judged: JudgedRun | None) -> list[str]:
    """'judge: MODEL · TEMPLATE@vN · pairwise vs C1 (scored by loglik)' and the sampling
    settings; nothing for a run with neither."""
    if judged is None:
        return []
    lines = []
    if judged.judge:
        j = judged.judge
        versus = f" vs C{judged.reference}" if j["mode"] == "pairwise" else ""
        lines.append(
            f"judge: `{j['model']}` · `{j['template']}@v{j['version']}` · {j['mode']}{versus} "
            f"(verdicts scored by {j['scoring']})"
        )
    if judged.samples > 1:
        seeds = ", ".join(str(seed) for seed in judged.config.get("seeds") or [])
        lines.append(
            f"sampling: {judged.samples} samples per example at temperature "
            f"{judged.config.get('temperature')} (seeds {seeds or '–'})"
        )
    return lines


def judged_lines(judged: JudgedRun | None) -> list[str]:
    """The judge's and repeated sampling's summary lines, as `studio compare` prints them."""
    if judged is None:
        return []
    text = "\n".join(
        part
        for part in (format_judges(judged.judges, judged.reference),
                     format_sampling(judged.sampling))
        if part
    )  # fmt: skip
    return text.splitlines()


def judged_markdown(runs: Sequence[JudgedRun]) -> str:
    """The compare-of-runs view's judge and sampling section: per judged or sampled run its
    lineage and summary lines; '' when no run has either."""
    blocks = []
    for run in runs:
        lineage, lines = judge_lineage(run), judged_lines(run)
        if lineage or lines:
            items = [f"- {line}" for line in lineage]
            items += [f"- {line.strip()}" for line in lines if line.startswith("  ")]
            blocks.append("\n".join([f"**{run.ref}**", *items]))
    if not blocks:
        return ""
    return "\n\n".join(["**Judges and repeated sampling**", *blocks])


def detail_markdown(detail: RunDetail, judged: JudgedRun | None = None) -> str:
    entry = detail.entry
    lines = [
        f"### {entry.ref} · {entry.name}",
        f"**{entry.kind}** · **{entry.status}** · created {entry.created_at:%Y-%m-%d %H:%M} UTC"
        f" · {entry.progress} · {entry.headline.text}",
    ]
    if entry.tags:
        lines.append("Tags: " + " ".join(f"`{tag}`" for tag in entry.tags))
    if entry.note:
        lines.append(f"> {entry.note}")
    if detail.error:
        lines.append(f"**Error:** {detail.error}")
    engine = lineage_lines(detail)
    lines += ["", "**Lineage**", *(_lineage_item(line) for line in engine)]
    # The judge and sampling settings, unless the engine's lineage already names them.
    named = {line.partition(":")[0] for line in engine}
    lines += [f"- {line}" for line in judge_lineage(judged) if line.partition(":")[0] not in named]
    summary = judged_lines(judged)
    if summary:
        lines += ["", "**Judge and sampling**", "```", *summary, "```"]
    if detail.final_metrics:
        lines += ["", "**Final metrics**"]
        lines += [f"- {key}: {_number(value)}" for key, value in detail.final_metrics.items()]
    return "\n".join(lines)


def _lineage_item(line: str) -> str:
    """ "template: a@v1 (sha256 …)" -> a list item with the name as code (no autolinks on @)."""
    label, _, rest = line.partition(": ")
    name, space, extra = rest.partition(" (")
    return f"- {label}: `{name}`" + (f" ({extra}" if space else "")


def summary_frame(detail: RunDetail) -> pd.DataFrame:
    rows = [
        [f"C{s.position + 1}", s.model, f"{s.template}@v{s.template_version}", s.shots, s.seed,
         s.n, estimate_text(s.accuracy)]
        for s in detail.summaries
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=SUMMARY_HEADERS)


def examples_frame(detail: RunDetail) -> pd.DataFrame:
    rows = [
        [r["config"], r["example_index"], r["gold"], r["prediction"] or r["output"] or "",
         "✓" if r["correct"] else "✗", "…" + r["prompt"][-PROMPT_TAIL:]]
        for r in detail.examples[:EXAMPLE_LIMIT]
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=EXAMPLE_HEADERS)


def config_yaml(config: dict[str, Any]) -> str:
    return yaml.safe_dump(config, sort_keys=False, allow_unicode=True)


def templates_text(detail: RunDetail) -> str:
    parts = [
        f"# {v.template_name}@v{v.version}\n{v.content.rstrip()}" for v in detail.lineage.templates
    ]
    return "\n\n".join(parts) or "# no template recorded"


def curves_frame(points: Sequence[dict[str, Any]], metric: str = "loss") -> pd.DataFrame:
    """One metric (loss or eval_loss) of one or more runs against the step, for a LinePlot."""
    rows = [(p["step"], p["value"], p["run"]) for p in points if p["metric"] == metric]
    if not rows:
        return EMPTY_CURVES.rename(columns={"loss": metric})
    frame = pd.DataFrame(rows, columns=["step", metric, "run"])
    return frame.astype({"step": "int64", metric: "float64", "run": "str"})


def metrics_frame(result: RunComparison) -> pd.DataFrame:
    rows = []
    for m in result.metrics:
        accuracy = "–"
        if m["accuracy"] is not None:
            accuracy = f"{m['accuracy']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"
        losses = [_number(m["train_loss"]), _number(m["eval_loss"])]
        rows.append([m["run"], m["name"], m["kind"], m["status"], m["dataset"] or "", accuracy,
                     m["best_config"] or "", *losses])  # fmt: skip
    return pd.DataFrame(rows, columns=METRIC_HEADERS)


def diff_frame(result: RunComparison, differences_only: bool) -> pd.DataFrame:
    runs = [m["run"] for m in result.metrics]
    rows = [[row.key, *row.values] for row in result.config_diff
            if row.differs or not differences_only]  # fmt: skip
    return pd.DataFrame(rows, columns=["setting", *runs])


def agreement_markdown(result: RunComparison) -> str:
    agreement = result.agreement
    if agreement is None:
        return result.agreement_note
    lines = [
        f"**Per-example agreement** over {agreement.n} shared examples of `{agreement.dataset}` "
        f"(each run's best config): all right {agreement.all_right}, all wrong "
        f"{agreement.all_wrong}, split {agreement.n - agreement.all_right - agreement.all_wrong}.",
        "",
        *(f"- {a} vs {b}: same verdict on **{rate:.1%}** of examples"
          for a, b, rate in agreement.pairwise),
    ]  # fmt: skip
    lines += _paired_lines(agreement)
    lines += [f"- not included: {why}" for why in agreement.excluded]
    return "\n".join(lines)


def _paired_lines(agreement: Agreement) -> list[str]:
    """Each run against the first over the shared examples: Δ accuracy, CI, McNemar p."""
    pairs = [(label, p) for label, p in zip(agreement.runs, agreement.paired, strict=False) if p]
    if not pairs:
        return []
    lines = [
        "",
        f"**Paired with {agreement.runs[0]}** (difference in accuracy, 95% paired bootstrap "
        "interval, McNemar's exact test; discordant = only this run right / only the first):",
    ]
    lines += [f"- {label}: {paired_text(p)}" for label, p in pairs]
    return lines


def agreement_frame(agreement: Agreement | None) -> pd.DataFrame:
    if agreement is None:
        return pd.DataFrame(columns=["#", "gold"])
    rows = [
        [
            row["example_index"],
            row["gold"],
            *("✓" if row[label] else "✗" for label in agreement.runs),
        ]
        for row in agreement.rows
    ]
    return pd.DataFrame(rows, columns=["#", "gold", *agreement.runs])


def rerun_progress(ref: object, run_id: int | None, done: int, total: int) -> str:
    return f"Re-running {ref} as c{run_id}: {done}/{total} rows."


def judging_progress(ref: object, run_id: int | None, done: int, total: int) -> str:
    return f"Re-running {ref} as c{run_id}: all rows in; the judge has graded {done}/{total}."


def rerun_ended(ref: object, run_id: int, status: str, error: str | None) -> str:
    ending = f": {error}" if error else "."
    return f"Re-run of {ref} is c{run_id}, {status}{ending}"


def _number(value: Any) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else f"{value:.4g}"
    return "–" if value is None else str(value)


MARKED_POINTS = 40  # series this short get a dot per point
PALETTE = ("#f97316", "#2563eb", "#16a34a", "#9333ea", "#dc2626", "#0891b2", "#ca8a04", "#db2777")


def curves_svg(frame: pd.DataFrame, title: str) -> str:
    """Overlaid curves (columns step, <metric>, run) as an inline SVG: one coloured line per run,
    a legend, and the value range on the axes. (gr.LinePlot keeps the colour series of its first
    drawing, so runs compared later would not be drawn.)"""
    metric = next((c for c in frame.columns if c not in ("step", "run")), "loss")
    if frame.empty:
        return (
            f'<p class="exp-empty">{html.escape(title)}: nothing logged by the selected runs.</p>'
        )
    width, height, left, top, plot_w, plot_h = 560, 250, 52, 28, 480, 170
    x0, x1 = float(frame["step"].min()), float(frame["step"].max())
    y0, y1 = float(frame[metric].min()), float(frame[metric].max())
    x1, y1 = (x1 if x1 > x0 else x0 + 1), (y1 if y1 > y0 else y0 + 1e-9)

    def point(step: float, value: float) -> str:
        x = left + (step - x0) / (x1 - x0) * plot_w
        y = top + plot_h - (value - y0) / (y1 - y0) * plot_h
        return f"{x:.1f},{y:.1f}"

    parts = [f'<svg class="exp-curves" viewBox="0 0 {width} {height}" role="img" '
             f'aria-label="{html.escape(title)}"><text x="{left}" y="16" class="exp-title">'
             f"{html.escape(title)}</text>",
             f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" class="exp-frame"/>',
             f'<text x="{left - 6}" y="{top + 4}" text-anchor="end">{y1:.3g}</text>',
             f'<text x="{left - 6}" y="{top + plot_h}" text-anchor="end">{y0:.3g}</text>',
             f'<text x="{left}" y="{top + plot_h + 16}">step {x0:g}</text>',
             f'<text x="{left + plot_w}" y="{top + plot_h + 16}" '
             f'text-anchor="end">{x1:g}</text>']  # fmt: skip
    for i, (run, rows) in enumerate(frame.groupby("run", sort=False)):
        colour = PALETTE[i % len(PALETTE)]
        line = " ".join(point(s, v) for s, v in zip(rows["step"], rows[metric], strict=True))
        parts.append(f'<polyline points="{line}" fill="none" stroke="{colour}" stroke-width="2" '
                     f'class="exp-line" data-run="{html.escape(str(run))}"/>')  # fmt: skip
        if len(rows) <= MARKED_POINTS:  # sparse series (eval loss; a single point draws no line)
            for s, v in zip(rows["step"], rows[metric], strict=True):
                cx, cy = point(s, v).split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="3" fill="{colour}" class="exp-dot"/>')
        y = top + plot_h + 34 + 14 * (i // 3)
        x = left + 165 * (i % 3)
        parts.append(f'<rect x="{x}" y="{y - 9}" width="10" height="10" fill="{colour}"/>'
                     f'<text x="{x + 14}" y="{y}">{html.escape(str(run))}</text>')  # fmt: skip
    return "".join(parts) + "</svg>"
