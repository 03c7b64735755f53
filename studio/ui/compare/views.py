"""Compare tab formatting without gradio: tables of a run's summary, per-example grid and details,
the data previews, and the texts of a run as it goes.

Every function takes store records or summaries and returns plain values (strings, lists of rows),
so the views can be tested on a real run without a browser. The chart is in compare/chart.py.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from studio.compare.paired import Paired
from studio.compare.summary import ConfigSummary, JudgeSummary, SamplingSummary, SeedGroup
from studio.compare.tasks import ImportedTask
from studio.datasets import Dataset
from studio.store.records import ComparisonConfig, ComparisonResult, ComparisonRun
from studio.ui.common.formatting import estimate_text, progress_bar

GRID_FILTERS = ("all", "disagreements", "failures")
GRID_FIXED = ["#", "prompt (end)", "gold"]  # the columns before one column per config
GRID_MAX_ROWS = 1000
PAST_RUN_HEADERS = ["run", "started", "name", "data", "scoring", "configs", "rows", "status"]
SEED_HEADERS = ["model", "template", "shots", "seeds", "accuracy mean ± std", "per seed"]
SCORE_HEADERS = ["choice", "logprob", "bytes", "per char", "predicted"]
PREVIEW_ROWS = 5
PREVIEW_CHARS = 60
FINAL_STATUS = {
    "completed": "✓ Run #{run} completed: {done}/{total} rows.",
    "stopped": "■ Run #{run} stopped: the {done}/{total} rows scored so far are kept.",
    "failed": "✗ Run #{run} failed after {done}/{total} rows: {error}",
}
PREPARING = progress_bar(0, "Preparing: reading the data and the templates…", "running")
IDLE = progress_bar(0, "Not running.", "idle")
EMPTY_CHART = '<p class="cmp-empty">Start a run, or open a past one, to see its chart.</p>'
SELECT_A_CELL = "Select a cell of the grid to see its exact prompt and scores."
NOTHING_RUNNING = "Nothing is running in this session."
SAME_FILE_NOTE = (
    "⚠ **This is the evaluation data file itself**: shots would leak from the evaluation set, "
    "so a run refuses it. Give a separate shot-pool file, or clear this to split a pool off "
    "the data."
)
ORDER_READS = {
    "reference-first": "answer A is C{reference}'s, answer B this configuration's",
    "this-first": "answer A is this configuration's, answer B C{reference}'s",
}
NO_POOL_NOTE = "No shot-pool file: *pool size* rows of the data (shuffled) are held out as shots."


def config_tags(configs: Sequence[ComparisonConfig]) -> list[str]:
    """Short unique names for a run's configs: "C1 · 0-shot", naming only what varies."""
    fields = [(c.model_spec, c.template_name, f"{c.shots}-shot", f"seed {c.seed}") for c in configs]
    varying = [i for i in range(4) if len({f[i] for f in fields}) > 1]
    return [" · ".join([f"C{n}", *(f[i] for i in varying)]) for n, f in enumerate(fields, start=1)]


@dataclass(frozen=True)
class Extras:
    """What a judged or repeated-sampling run adds to its summary, by configuration position:
    only the columns the run needs."""

    judge_mode: str | None = None  # pointwise | pairwise | None (not judged)
    judge_reference: int = 1  # 1-based: the configuration a pairwise judge compares with
    judges: dict[int, JudgeSummary] = field(default_factory=dict)
    sampling: dict[int, SamplingSummary] = field(default_factory=dict)

    @property
    def largest_k(self) -> int:
        return max((k for s in self.sampling.values() for k in s.pass_at), default=1)


def run_extras(
    run: ComparisonRun, judges: Sequence[JudgeSummary], sampling: Sequence[SamplingSummary]
) -> Extras:
    """The Extras of a stored run from its judge_summaries and sampling_summaries."""
    return Extras(
        judge_mode=run.judge["mode"] if run.judge else None,
        judge_reference=int(run.config.get("reference") or 1),
        judges={j.position: j for j in judges},
        sampling={s.position: s for s in sampling},
    )


def extra_headers(extras: Extras | None) -> list[str]:
    if extras is None:
        return []
    headers = []
    if extras.judge_mode == "pointwise":
        headers += ["judge [95% CI]", "agrees (κ)"]
    elif extras.judge_mode == "pairwise":
        headers += [f"W/T/L vs C{extras.judge_reference}", "win rate [95% CI]",
                    "position consistency"]  # fmt: skip
    if extras.sampling:
        headers += ["pass@1", f"pass@{extras.largest_k}", "consistency"]
    return headers


def extra_cells(extras: Extras | None, position: int) -> list[str]:
    """The cells of extra_headers for the configuration at `position` (0-based)."""
    if extras is None:
        return []
    cells = []
    judge = extras.judges.get(position)
    if extras.judge_mode == "pointwise":
        cells += ["—", "—"] if judge is None else [estimate_text(judge.score), _agrees(judge)]
    elif extras.judge_mode == "pairwise":
        if position == extras.judge_reference - 1:
            cells += ["reference", "—", "—"]
        elif judge is None:
            cells += ["—", "—", "—"]
        else:
            cells += [f"{judge.wins}/{judge.ties}/{judge.losses}", estimate_text(judge.score),
                      _share(judge.consistency)]  # fmt: skip
    if extras.sampling:
        sampled = extras.sampling.get(position)
        if sampled is None:
            cells += ["—", "—", "—"]
        else:
            top = sampled.pass_at.get(extras.largest_k)
            cells += [_share(sampled.pass_at.get(1), 3), _share(top, 3),
                      _share(sampled.consistency)]  # fmt: skip
    return cells


def _agrees(judge: JudgeSummary) -> str:
    """The judge's agreement with the metric's verdict, and Cohen's kappa: '0.75 (κ 0.50)'."""
    if judge.agreement is None:
        return "—"
    kappa = "—" if judge.kappa is None else f"{judge.kappa:.2f}"
    return f"{judge.agreement:.2f} (κ {kappa})"


def _share(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def summary_headers(
    scoring: str, reference: int = 1, calibrated: bool = False, extras: Extras | None = None
) -> list[str]:
    second = "acc_norm [95% CI]" if scoring == "loglik" else "mean score [95% CI]"
    return [
        "config",
        "model",
        "template",
        "shots",
        "seed",
        "n",
        "accuracy [95% CI]",
        second,
        "ex/s",
        f"Δ vs C{reference} [95% CI]",
        "p · discordant",
        *(["calibrated accuracy [95% CI] · prior"] if calibrated else []),
        *extra_headers(extras),
    ]


def summary_rows(
    summaries: Sequence[ConfigSummary],
    scoring: str,
    paired: Sequence[Paired | None] | None = None,
    extras: Extras | None = None,
) -> list[list[Any]]:
    """One row per configuration, in grid order; `paired` (same order) fills the two columns
    after ex/s: the difference to the reference configuration over the same examples; `extras`
    the judge's and repeated sampling's columns at the end."""
    ordered = sorted(summaries, key=lambda s: s.position)
    rows = []
    for index, s in enumerate(ordered):
        second = s.acc_norm if scoring == "loglik" else s.mean_score
        pair = paired[index] if paired is not None else None
        rows.append(
            [
                f"C{s.position + 1}",
                s.model,
                f"{s.template}@v{s.template_version}",
                s.shots,
                s.seed,
                s.n,
                estimate_text(s.accuracy),
                estimate_text(second),
                round(s.examples_per_s, 1),
                *paired_cells(pair, is_reference=paired is not None and pair is None),
                *([calibrated_cell(s)] if any(x.calibrated for x in ordered) else []),
                *extra_cells(extras, s.position),
            ]
        )
    return rows


def calibrated_cell(summary: ConfigSummary) -> str:
    """'0.712 [0.650, 0.770] · prior negative 0.81, positive 0.19', or — when not calibrated."""
    if summary.calibrated is None or summary.prior is None:
        return "—"
    prior = ", ".join(f"{choice} {p:.2f}" for choice, p in summary.prior.items())
    return f"{estimate_text(summary.calibrated)} · prior {prior}"


def paired_cells(pair: Paired | None, is_reference: bool) -> list[str]:
    """(difference [CI], p-value · discordant pairs) of one configuration against the reference."""
    if is_reference:
        return ["reference", "—"]
    if pair is None or pair.n == 0:
        return ["—", "—"]
    d = pair.difference
    test = "McNemar" if pair.discordant is not None else "permutation"
    p_text = f"{test} p={pair.p_value:.3g}"
    if pair.p_adjusted is not None:
        p_text += f" · Holm {pair.p_adjusted:.3g}"
    if pair.discordant is not None:
        p_text += f" · {pair.discordant[0]}/{pair.discordant[1]}"
    return [f"{d.value:+.3f} [{d.low:+.3f}, {d.high:+.3f}] ({pair.metric})", p_text]


def seed_rows(groups: Sequence[SeedGroup]) -> list[list[Any]]:
    """Cells equal but for the seed: mean ± sample std of accuracy across the seeds."""
    return [
        [
            g.model,
            g.template,
            g.shots,
            g.accuracy.n_seeds,
            f"{g.accuracy.mean:.3f} ± {g.accuracy.std:.3f}",
            ", ".join(f"{v:.3f}" for v in g.accuracy.values),
        ]
        for g in groups
    ]


def past_run_rows(runs: Sequence[ComparisonRun]) -> list[list[Any]]:
    return [
        [
            r.id,
            r.created_at.strftime("%Y-%m-%d %H:%M"),
            r.name or "",
            r.dataset.name,
            r.scoring,
            len(r.configs),
            f"{r.results_done}/{r.n_examples * len(r.configs)}",
            r.status,
        ]
        for r in runs
    ]


def run_markdown(run: ComparisonRun) -> str:
    """The header above a run's results: what ran, on what, and how it ended."""
    config = run.config
    total = run.n_examples * len(run.configs)
    pool = f"shot pool `{run.shot_pool.name}`" if run.shot_pool else "no separate shot pool"
    when = run.created_at.strftime("%Y-%m-%d %H:%M:%S")
    lines = [
        f"### Run #{run.id}{f' — {run.name}' if run.name else ''} · **{run.status}**",
        f"`{run.dataset.name}` ({run.dataset.format}, sha256 {run.dataset.content_hash[:10]}) · "
        f"{pool} · {run.n_examples} examples × {len(run.configs)} configs · "
        f"**{run.results_done}/{total}** rows · scoring {run.scoring} · "
        f"selection {config.get('selection', 'first')} · started {when}",
    ]
    if run.error:
        lines.append(f"> {run.error}")
    return "\n\n".join(lines)


def final_status(
    status: str,
    run_id: int,
    done: int,
    total: int,
    error: str | None,
    judged: tuple[int, int] | None = None,
) -> str:
    """How a run the tab followed ended: ✓ completed, ■ stopped or ✗ failed, with its rows (and
    `judged`: answers judged of those the judge started on)."""
    text = FINAL_STATUS.get(status, FINAL_STATUS["stopped"])
    ended = text.format(run=run_id, done=done, total=total, error=error)
    if judged is not None:
        ended += f" Judge: {judged[0]}/{judged[1]} answers judged."
    return ended


# ---------------------------------------------------------------------------------------------
# The per-example grid


@dataclass(frozen=True)
class Grid:
    headers: list[str]
    rows: list[list[Any]]
    note: str


def _mark(result: ComparisonResult | None) -> str:
    if result is None:
        return ""
    shown = result.prediction if result.prediction is not None else (result.output or "")
    shown = " ".join(shown.split())
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return f"{'✓' if result.correct else '✗'} {shown}{_sampled_mark(result)}{_judge_mark(result)}"


def _sampled_mark(result: ComparisonResult) -> str:
    """' (3/5 ✓)': how many of a sampled result's samples are right."""
    if not result.samples:
        return ""
    right = sum(bool(s.get("correct")) for s in result.samples)
    return f" ({right}/{len(result.samples)} ✓)"


def _judge_mark(result: ComparisonResult) -> str:
    """' · ⚖ win' (pairwise) or ' · ⚖ yes' (pointwise): the judge's verdict on a cell."""
    judgement = result.judgement
    if not judgement:
        return ""
    verdict = judgement.get("outcome") if judgement.get("mode") == "pairwise" else None
    verdict = verdict or judgement.get("verdict") or "?"
    return f" · ⚖ {verdict}"


def prompt_end(prompt: str, width: int = 70) -> str:
    """The last characters of a prompt, whitespace collapsed: where the example itself is."""
    flat = " ".join(prompt.split())
    return flat if len(flat) <= width else "…" + flat[-(width - 1) :]


def _keep(cells: list[ComparisonResult], view: str) -> bool:
    if view == "failures":
        return any(not r.correct for r in cells)
    if view == "disagreements":
        return len({r.prediction for r in cells}) > 1
    return True


def grid_table(run: ComparisonRun, results: Sequence[ComparisonResult], view: str = "all") -> Grid:
    """One row per example and one column per config (✓/✗ and the prediction)."""
    if view not in GRID_FILTERS:
        raise ValueError(f"grid filter must be one of {', '.join(GRID_FILTERS)}; got {view!r}")
    ids = [c.id for c in run.configs]
    by_example: dict[int, dict[int, ComparisonResult]] = defaultdict(dict)
    for result in results:
        by_example[result.example_index][result.config_id] = result
    rows: list[list[Any]] = []
    matched = 0
    for index in sorted(by_example):
        cells = by_example[index]
        if not _keep(list(cells.values()), view):
            continue
        matched += 1
        if len(rows) < GRID_MAX_ROWS:
            first = next(iter(cells.values()))
            marks = [_mark(cells.get(config_id)) for config_id in ids]
            rows.append([index, prompt_end(first.prompt_text), first.gold, *marks])
    note = f"{matched} of {len(by_example)} examples ({view})"
    if matched > len(rows):
        note += f"; showing the first {len(rows)}"
    return Grid([*GRID_FIXED, *config_tags(run.configs)], rows, note)


def grid_widths(n_configs: int) -> list[str | int]:
    """Column widths that keep every config column on screen: the prompt gets a third."""
    each = 54 / max(n_configs, 1)
    return ["6%", "32%", "8%", *[f"{each:.2f}%"] * n_configs]


def grid_position(column: int, n_configs: int) -> int:
    """The config position of a clicked grid column (the first config for the fixed columns)."""
    position = column - len(GRID_FIXED)
    return position if 0 <= position < n_configs else 0


def cell_markdown(run: ComparisonRun, position: int, result: ComparisonResult) -> str:
    config = run.configs[position]
    verdict = "✓ correct" if result.correct else "✗ wrong"
    score = f" · score {result.score:.3f}" if result.score is not None else ""
    lines = [
        f"**Example {result.example_index}** · {config_tags(run.configs)[position]} "
        f"(`{config.label}`)",
        f"gold **{result.gold}** · prediction **{result.prediction}** · {verdict}{score} · "
        f"{_tokens(result.prompt_tokens)} prompt tokens · {result.latency_ms:.0f} ms",
    ]
    if result.samples:
        right = sum(bool(s.get("correct")) for s in result.samples)
        lines.append(
            f"{len(result.samples)} samples, {right} right; the prediction is the majority "
            "answer (every sample is listed under Generated output)"
        )
    if result.judgement:
        lines.append(judge_line(result.judgement, int(run.config.get("reference") or 1)))
    return "  \n".join(lines)


def judge_line(judgement: dict[str, Any], reference: int) -> str:
    """The judge's verdict on one cell in a line; its prompts and scores are in judge_text."""
    who = f"judge `{judgement.get('model')}` · `{judgement.get('template')}`"
    if judgement.get("mode") == "pairwise":
        how = "the same in both orders" if judgement.get("consistent") else "flips with the order"
        return f"{who} vs C{reference}: **{judgement.get('outcome')}** (the verdict {how})"
    value = judgement.get("score")
    score = "" if value is None else f" · score {value:.3f}"
    return f"{who}: verdict **{judgement.get('verdict')}**{score}"


def judge_text(judgement: dict[str, Any] | None, reference: int) -> str:
    """Everything the judge saw and said on one cell: per prompt (both orders, pairwise) the
    verdict, its score under each choice (local judges) or its raw output (served judges), and
    the exact judge prompt."""
    if not judgement:
        return ""
    if judgement.get("mode") != "pairwise":
        return _judge_part("judge prompt", judgement)
    parts = []
    for order in judgement.get("orders") or []:
        reads = ORDER_READS.get(order["order"], "").format(reference=reference)
        parts.append(_judge_part(f"order {order['order']} ({reads})", order))
    return "\n\n".join(parts)


def _judge_part(title: str, part: dict[str, Any]) -> str:
    lines = [f"=== {title}: verdict {part.get('verdict')} ==="]
    if part.get("scores"):
        lines.append("scores: " + " · ".join(
            f"{s['choice']} logprob {s['logprob']:.3f} p {s['p']:.3f}" for s in part["scores"]
        ))  # fmt: skip
    if part.get("raw") is not None:
        lines.append(f"raw output: {part['raw']}")
    if part.get("preference") is not None:
        lines.append(f"preference for this answer: {part['preference']:.3f}")
    return "\n".join([*lines, "--- prompt ---", str(part.get("prompt", ""))])


def output_text(result: ComparisonResult) -> str:
    """The generated output of a cell; for a sampled result every sample with its verdict."""
    if not result.samples:
        return result.output or ""
    blocks = []
    for s in result.samples:
        mark = "✓" if s.get("correct") else "✗"
        score = s.get("score")
        scored = "" if score is None else f" · score {float(score):.3f}"
        blocks.append(
            f"— sample {s.get('sample')} {mark}{scored} · prediction: {s.get('prediction')}\n"
            f"{s.get('output') or ''}"
        )
    return "\n\n".join(blocks)


def _tokens(count: int | None) -> str:
    return "?" if count is None else str(count)  # None: a served model did not report it


def choice_score_rows(result: ComparisonResult) -> list[list[Any]]:
    """Log-likelihood of every choice (summed over its tokens), its length in bytes as scored,
    the per-character value acc_norm compares, and which choice was predicted."""
    rows = []
    for item in result.choice_scores or []:
        choice, logprob = str(item["choice"]), float(item["logprob"])
        per_char = logprob / max(len(choice), 1)
        picked = "◀" if choice == result.prediction else ""
        rows.append([choice, round(logprob, 4), item.get("length"), round(per_char, 4), picked])
    return rows


# ---------------------------------------------------------------------------------------------
# Data previews


def pool_note(pool_is_blank: bool, pool_is_data: bool) -> str:
    """The warning under the shot-pool file: none given, or the evaluation data itself."""
    if pool_is_blank:
        return NO_POOL_NOTE
    return SAME_FILE_NOTE if pool_is_data else ""


def task_markdown(task: ImportedTask, saved: str) -> str:
    """What loading an lm-evaluation-harness task did to the form."""
    pool = f"shots from `{task.shot_pool.name}`" if task.shot_pool else "no shot pool"
    return (
        f"Task **{task.name}**: template {saved}; data `{task.data.name}`, {pool}, "
        f"{task.shots} shot(s) ({task.selection}), log-likelihood scoring, metrics "
        f"{', '.join(task.metrics)}. The form below is filled in: check it, then Start."
    )


def dataset_markdown(dataset: Dataset) -> str:
    columns = ", ".join(f"`{c}`" for c in dataset.columns)
    return f"**{dataset.name}** · {dataset.format} · {len(dataset)} rows · columns: {columns}"


def preview_rows(dataset: Dataset, n: int = PREVIEW_ROWS, width: int = 120) -> list[list[str]]:
    def cell(value: Any) -> str:
        text = "" if value is None else str(value)
        return text if len(text) <= width else text[: width - 3] + "..."

    return [[cell(row[c]) for c in dataset.columns] for row in dataset.preview(n)]
