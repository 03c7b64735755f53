"""`studio compare`: run a comparison grid headlessly through the engine and store of the Compare
tab (stored runs: `studio runs`)."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

from studio.cli.arguments import add_column_map
from studio.cli.follow import follow_comparison


def add_compare_parser(sub: Any) -> None:
    p = sub.add_parser(
        "compare",
        help="run a comparison grid (models × templates × shots × seeds) and store every row",
        description="Run a comparison grid headlessly; same engine and store as the Compare tab.",
    )
    p.add_argument("--config", help="run.yaml with the same settings (flags override it)")
    p.add_argument("--data", help="evaluation data: CSV, TSV, JSONL, JSON or Parquet")
    p.add_argument("--template", action="append", dest="templates", metavar="FILE_OR_NAME")
    p.add_argument(
        "--task",
        metavar="FILE.yaml",
        help="an lm-evaluation-harness task with local data, instead of --data/--template: its "
        "template is saved to the library as lm-eval-<task>",
    )
    p.add_argument("--model", action="append", dest="models", metavar="SPEC")
    p.add_argument("--shots", type=_ints, help="shot counts, e.g. 0,5")
    p.add_argument("--seeds", type=_ints, help="seeds, e.g. 1,2")
    p.add_argument("--shot-pool", dest="shot_pool", help="file the shots come from")
    p.add_argument("--pool-size", dest="pool_size", type=int, help="rows split off as shot pool")
    p.add_argument("--limit", type=int, help="evaluate the first N examples only")
    p.add_argument("--scoring", choices=["loglik", "generate"])
    p.add_argument("--selection", choices=["first", "random", "balanced", "similar"])
    p.add_argument("--quantization", choices=["none", "8bit", "4bit"])
    p.add_argument(
        "--metric", choices=["exact", "contains", "regex", "f1", "rouge_l", "chrf", "bleu"]
    )
    p.add_argument("--regex")
    p.add_argument("--max-new-tokens", dest="max_new_tokens", type=int)
    p.add_argument("--temperature", type=float)
    p.add_argument("--batch-rows", dest="batch_rows", type=int)
    p.add_argument("--label-column", dest="label_column")
    p.add_argument(
        "--calibrate",
        action="store_true",
        default=None,
        help="contextual calibration (loglik): also report accuracy with the label prior of "
        "content-free inputs divided out",
    )
    _add_judge_arguments(p)
    add_column_map(p)
    p.add_argument("--name")
    p.add_argument(
        "--reference",
        type=int,
        default=1,
        metavar="N",
        help="configuration (1-based, in grid order) the others are compared with, example by "
        "example: paired difference, 95%% CI and p-value (default 1)",
    )
    p.add_argument("--json", dest="json_out", metavar="OUT.json", help="write per-config results")
    p.add_argument(
        "--resume",
        type=int,
        metavar="RUN_ID",
        help="finish a stopped or interrupted run (only its missing rows are computed)",
    )
    p.set_defaults(func=run_compare)


def _add_judge_arguments(p: argparse.ArgumentParser) -> None:
    """Judges and repeated sampling (generation runs)."""
    p.add_argument(
        "--judge",
        metavar="SPEC",
        help="judge model (any model spec) that grades each generated answer",
    )
    p.add_argument(
        "--judge-template",
        dest="judge_template",
        metavar="NAME",
        help="judge template from the library (e.g. judge-pass-fail, judge-score-1to5, "
        "judge-pairwise) or a YAML file",
    )
    p.add_argument(
        "--judge-mode",
        dest="judge_mode",
        choices=["pointwise", "pairwise"],
        help="pointwise: grade each answer; pairwise: each against the --reference "
        "configuration's answer, in both orders",
    )
    p.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="answers sampled per example at --temperature: pass@k, consistency, majority vote",
    )


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not a comma-separated list of integers"
        ) from None


SETTINGS = (
    "data",
    "templates",
    "models",
    "shots",
    "seeds",
    "shot_pool",
    "pool_size",
    "limit",
    "scoring",
    "selection",
    "quantization",
    "metric",
    "regex",
    "max_new_tokens",
    "temperature",
    "batch_rows",
    "label_column",
    "name",
    "calibrate",
    "judge",
    "judge_template",
    "judge_mode",
    "samples",
)


def _config(args: argparse.Namespace, services: Any) -> Any:
    # lazy: the comparison config pulls in the store (sqlalchemy) and the template engine
    from studio.compare.config import build_config, load_config

    given = {key: getattr(args, key) for key in SETTINGS if getattr(args, key) is not None}
    if args.column_map:
        given["column_map"] = dict(args.column_map)
    if args.reference != 1 and args.judge:
        given["reference"] = args.reference  # the configuration a pairwise judge compares with
    if args.task:
        return build_config(**{**_task_settings(args, services), **given})
    if args.config:
        return load_config(args.config, **given)
    return build_config(**given)


def _task_settings(args: argparse.Namespace, services: Any) -> dict[str, Any]:
    """--task: the harness task's template saved to the library, and its data, shots, sampler."""
    # lazy: only --task needs the harness task reader
    from studio.compare.tasks import load_task

    clash = [flag for flag, key in TASK_CLASHES if getattr(args, key)]
    if clash:
        raise ValueError(
            f"--task sets the data and the template itself; drop {', '.join(clash)} (or drop "
            "--task and give them all)"
        )
    task = load_task(args.task, services.policy)
    saved = services.templates.save(task.template.to_yaml())
    print(f"task {args.task}: template {saved.message}")
    settings: dict[str, Any] = {
        "data": str(task.data),
        "templates": [task.template.name],
        "shots": [task.shots],
        "selection": task.selection,
        "scoring": "loglik",
    }
    if task.shot_pool is not None:
        settings["shot_pool"] = str(task.shot_pool)
    return settings


TASK_CLASHES = (("--data", "data"), ("--template", "templates"), ("--config", "config"))


def run_compare(args: argparse.Namespace) -> int:
    # lazy: the engines and the store stay out of `studio --help`
    from studio.compare.summary import (
        format_calibrated,
        format_judges,
        format_paired,
        format_sampling,
        format_table,
        judge_summaries,
        paired_summaries,
        sampling_summaries,
        summarize_run,
    )
    from studio.services import create_services

    services = create_services()
    runner = services.comparisons
    stop = threading.Event()
    if args.resume:
        stored = services.store.get_comparison_run(args.resume)
        if stored is not None:
            _check_reference(args.reference, len(stored.configs))
        events = runner.resume(args.resume, stop)
    else:
        config = _config(args, services)
        _check_reference(args.reference, config.n_configs)
        events = runner.run(config, stop)
    run_id, status = follow_comparison(events, stop)
    if run_id is None:
        return 1
    summaries = summarize_run(services.store, run_id)
    paired = paired_summaries(services.store, run_id, args.reference)
    print(f"run #{run_id}: {status}")
    print(format_table(summaries))
    if len(summaries) > 1:
        print(format_paired(summaries, paired))
    if any(s.calibrated for s in summaries):
        print(format_calibrated(summaries))
    judges = judge_summaries(services.store, run_id)
    sampling = sampling_summaries(services.store, run_id)
    run = services.store.get_comparison_run(run_id)
    judge_reference = int(run.config.get("reference") or 1) if run else 1
    for text in (format_judges(judges, judge_reference), format_sampling(sampling)):
        if text:
            print(text)
    if args.json_out:
        extra = {j.position: {"judge": _judge_json(j, judge_reference)} for j in judges}
        for x in sampling:
            extra.setdefault(x.position, {})["sampling"] = _sampling_json(x)
        _write_json(Path(args.json_out), run_id, status, summaries, paired, extra)
    return 0 if status == "completed" else (130 if status == "stopped" else 1)


def _check_reference(reference: int, n_configs: int) -> None:
    """--reference names a configuration of the grid, before anything runs."""
    if not 1 <= reference <= n_configs:
        raise ValueError(
            f"--reference {reference} is not a configuration of this grid; it has {n_configs} "
            f"(models × templates × shots × seeds, in that order): use 1 to {n_configs}"
        )


def _judge_json(j: Any, reference: int) -> dict[str, Any]:
    """A judge's summary of one configuration, for --json."""
    out: dict[str, Any] = {"mode": j.mode, "n": j.n}
    out.update(score=j.score.value, ci_low=j.score.low, ci_high=j.score.high)
    if j.mode == "pointwise":
        out.update(pass_rate=j.pass_rate, agreement=j.agreement, kappa=j.kappa)
        out["unjudged"] = j.unjudged
    else:
        out.update(reference=reference, wins=j.wins, ties=j.ties, losses=j.losses)
        out["position_consistency"] = j.consistency
    return out


def _sampling_json(x: Any) -> dict[str, Any]:
    """Repeated sampling's summary of one configuration, for --json."""
    return {
        "samples": x.samples,
        "pass_at_k": {str(k): v for k, v in x.pass_at.items()},
        "consistency": x.consistency,
        "majority_accuracy": x.majority,
        "per_draw_mean": x.per_draw.mean,
        "per_draw_std": x.per_draw.std,
    }


def _write_json(
    path: Path,
    run_id: int,
    status: str,
    summaries: list[Any],
    paired: list[Any],
    extra: dict[int, dict[str, Any]],
) -> None:
    rows = []
    for s, pair in zip(sorted(summaries, key=lambda s: s.position), paired, strict=True):
        row = {
            "run_id": run_id,
            "status": status,
            "model": s.model,
            "template": s.template,
            "template_version": s.template_version,
            "shots": s.shots,
            "seed": s.seed,
            "n": s.n,
            "accuracy": s.accuracy.value,
            "ci_low": s.accuracy.low,
            "ci_high": s.accuracy.high,
            "examples_per_s": s.examples_per_s,
        }
        if s.acc_norm is not None:
            row.update(
                acc_norm=s.acc_norm.value,
                acc_norm_ci_low=s.acc_norm.low,
                acc_norm_ci_high=s.acc_norm.high,
            )
        if s.mean_score is not None:
            row.update(
                score=s.mean_score.value,
                score_ci_low=s.mean_score.low,
                score_ci_high=s.mean_score.high,
            )
        if s.calibrated is not None:
            row.update(
                calibrated_accuracy=s.calibrated.value,
                calibrated_ci_low=s.calibrated.low,
                calibrated_ci_high=s.calibrated.high,
                calibration_prior=s.prior,
            )
        if pair is not None:
            row["paired"] = pair.as_dict()
        row.update(extra.get(s.position, {}))
        rows.append(row)
    path.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
