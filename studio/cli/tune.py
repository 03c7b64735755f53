"""`studio tune` and `studio jobs`: launch, watch, stop and resume tuning runs headlessly.

`studio tune` checks everything (config, model, data) before anything is queued, prints the data
report and the memory estimate, then queues the run. In the foreground it watches the run's
progress in the store with a progress bar (Ctrl-C asks the worker to stop at the next step and
save the adapter); with --detach it returns at once and the job runs on by itself.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from studio.cli.follow import queue_tuning, watch_tuning

# Flag -> (flat setting, type). Flat settings are the keys of studio.tuning.config.FLAT_FIELDS.
FLAGS: dict[str, tuple[str, Any, str]] = {
    "--model": ("model", str, "base model spec (bundled alias, HF id, folder, .gguf)"),
    "--data": ("data", str, "training data: CSV, TSV, JSONL, JSON or Parquet"),
    "--template": ("template", str, "studio prompt template (name or YAML) as the format"),
    "--format": (
        "format",
        str,
        "auto | alpaca | messages | template | preference | sharegpt-preference | kto",
    ),
    "--method": ("method", str, "sft (default) | dpo | orpo | kto"),
    "--beta": ("beta", float, "preference strength for dpo/orpo/kto (default 0.1)"),
    "--from-adapter": (
        "from_adapter",
        str,
        "adapters/NAME: continue from this adapter of the same base (dpo/orpo/kto)",
    ),
    "--quantization": ("quantization", str, "4bit (QLoRA) | 8bit | none"),
    "--lora-r": ("lora_r", int, "LoRA rank"),
    "--lora-alpha": ("lora_alpha", int, "LoRA alpha"),
    "--lora-dropout": ("lora_dropout", float, "LoRA dropout"),
    "--epochs": ("epochs", float, "passes over the training rows"),
    "--max-steps": ("max_steps", int, "optimizer steps (overrides --epochs)"),
    "--lr": ("lr", float, "peak learning rate"),
    "--scheduler": ("scheduler", str, "linear | cosine | constant | constant_with_warmup"),
    "--warmup-ratio": ("warmup_ratio", float, "share of steps warming up"),
    "--batch-size": ("batch_size", int, "sequences per step"),
    "--grad-accumulation": ("grad_accumulation", int, "steps per optimizer update"),
    "--max-length": ("max_length", int, "tokens per training sequence"),
    "--eval-split": ("eval_split", float, "fraction held out for eval loss"),
    "--eval-steps": ("eval_steps", int, "eval loss every N steps"),
    "--eval-rows": (
        "eval_rows",
        int,
        "eval rows each evaluation reads (default: ~10%% of compute)",
    ),
    "--batch-order": ("batch_order", str, "length-grouped (default) | random"),
    "--save-steps": ("save_steps", int, "checkpoint every N steps"),
    "--seed": ("seed", int, "seed for order, split and init"),
    "--processes": (
        "processes",
        int,
        "training processes, one per local GPU (accelerate launch; refused without N GPUs)",
    ),
    "--limit": ("limit", int, "use only the first N rows"),
}
SWITCHES = {
    "--rslora": "use_rslora",
    "--dora": "use_dora",
    "--packing": "packing",
    "--padding-free": "padding_free",
    "--gradient-checkpointing": "gradient_checkpointing",
    "--trust-remote-code": "trust_remote_code",
}


def add_tune_parser(sub: Any) -> None:
    p = sub.add_parser(
        "tune",
        help="train a LoRA/QLoRA adapter (foreground with a progress bar, or --detach)",
        description=(
            "Train a LoRA adapter on a (4-bit) base model. Same checks, queue and worker as the "
            "Tune tab. For several GPUs: accelerate launch -m studio.tuning.worker --config "
            "tune.yaml"
        ),
    )
    p.add_argument("--config", help="tune.yaml with the same settings (flags override it)")
    p.add_argument("--output", help="adapters/NAME (or just NAME): where the adapter lands")
    for flag, (dest, kind, text) in FLAGS.items():
        p.add_argument(flag, dest=dest, type=kind, help=text)
    for flag, dest in SWITCHES.items():
        p.add_argument(flag, dest=dest, action="store_const", const=True)
    p.add_argument("--target-modules", dest="target_modules", help="all-linear or q_proj,v_proj")
    p.add_argument("--prompt-loss", action="store_true", help="also train on the prompt tokens")
    p.add_argument("--map", dest="column_map", action="append", metavar="VARIABLE=COLUMN")
    p.add_argument("--overwrite", action="store_true", help="replace an existing adapter folder")
    p.add_argument("--detach", action="store_true", help="queue the run and return at once")
    p.add_argument("--check", action="store_true", help="only check and report; queue nothing")
    p.add_argument("--json", dest="json_out", metavar="OUT.json", help="write the run's results")
    p.set_defaults(func=run_tune)

    jobs = sub.add_parser("jobs", help="tuning runs: list, stop, resume, log")
    jobs_sub = jobs.add_subparsers(dest="jobs_command", required=True)
    listing = jobs_sub.add_parser("list", help="queued, running and finished tuning runs")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(func=run_jobs_list)
    for name, text in (("stop", "stop (or cancel if queued)"), ("resume", "resume"), ("log", "")):
        action = jobs_sub.add_parser(name, help=f"{text or 'show the log tail of'} a run")
        action.add_argument("run_id", type=int)
        action.set_defaults(func=run_jobs_action, action=name)


def _flat_values(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {dest: getattr(args, dest) for dest, _k, _t in FLAGS.values()}
    values.update({dest: getattr(args, dest) for dest in SWITCHES.values()})
    if args.output:
        values["name"] = Path(args.output).name if "/" in args.output else args.output
    if args.target_modules:
        names = [part.strip() for part in args.target_modules.split(",")]
        values["target_modules"] = "all-linear" if names == ["all-linear"] else names
    if args.prompt_loss:
        values["completion_only_loss"] = False
    if args.column_map:
        pairs = [text.partition("=") for text in args.column_map]
        bad = [a + b + c for a, b, c in pairs if not b]
        if bad:
            raise ValueError(f"--map: '{bad[0]}' is not VARIABLE=COLUMN")
        values["column_map"] = {a.strip(): c.strip() for a, _b, c in pairs}
    return values


def _config(args: argparse.Namespace) -> Any:
    # lazy: the tuning config (pydantic, yaml) stays out of `studio --help`
    from studio.tuning.config import TuneConfigError, flat_config, load_tune_config

    values = _flat_values(args)
    if args.output and "/" in args.output and Path(args.output).parent.name != "adapters":
        raise TuneConfigError(
            f"--output: adapters are written under the adapters folder; give adapters/NAME "
            f"or NAME, not '{args.output}'"
        )
    if args.config:
        return load_tune_config(args.config, **values)
    if values.get("name") is None:
        raise TuneConfigError("--output: give the adapter's name, e.g. --output adapters/my-lora")
    if values.get("data") is None:
        raise TuneConfigError("--data: give the training data file")
    return flat_config(**values)


def run_tune(args: argparse.Namespace) -> int:
    from studio.services import create_services  # lazy: keeps studio --help free of sqlalchemy
    from studio.tuning.preference_data import PreparedPreference  # lazy: as the services
    from studio.tuning.trainer import evaluation_summary  # lazy: as the services

    config = _config(args)
    tuning = create_services().tuning
    check = tuning.check(config, overwrite=args.overwrite)
    prepared = check.prepared
    print(prepared.summary())
    if check.memory is not None:
        print(check.memory.describe())
    print(f"{check.total_steps} optimizer steps → {check.adapter_dir}")
    if isinstance(prepared, PreparedPreference):
        print(f"Method: {_method_line(check.config)}")
        print("Training strings of the first row, exactly as the trainer gets them:")
        print(prepared.preview(1))
    else:
        print(f"Evaluation: {evaluation_summary(check.config, prepared.train, prepared.eval)}")
    if args.check:
        return 0
    run = queue_tuning(tuning, check)
    if args.detach:
        print(f"run #{run.id} queued; follow it with `studio jobs log {run.id}` or the Tune tab")
        return 0
    final = watch_tuning(tuning, run.id)
    print(f"run #{run.id}: {final.status}" + (f" — {final.error}" if final.error else ""))
    if args.json_out:
        _write_json(Path(args.json_out), final)
    return {"completed": 0, "stopped": 130}.get(final.status, 1)


def _write_json(path: Path, run: Any) -> None:
    summary = run.summary or {}
    payload = {
        "run_id": run.id,
        "status": run.status,
        "error": run.error,
        "adapter_path": run.adapter_path if run.status in ("completed", "stopped") else None,
        "base_model": run.base_model,
        "steps": summary.get("steps"),
        "train_loss": summary.get("train_loss"),
        "final_loss": summary.get("train_loss"),
        "eval_loss": summary.get("eval_loss"),
        "tokens_per_second": summary.get("tokens_per_second"),
        "wall_seconds": summary.get("wall_seconds"),
        "method": (run.config.get("preference") or {}).get("method", "sft"),
        "preference_accuracy": summary.get("preference_accuracy"),
        "summary": summary,
        "config": run.config,
    }
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")


def _method_line(config: Any) -> str:
    from studio.tuning.preference import beta_of  # lazy: as the services

    preference = config.preference
    line = f"{preference.method}, beta {beta_of(config):g}"
    if preference.method in ("dpo", "kto"):
        line += (
            "; reference: the starting adapter, kept frozen"
            if preference.from_adapter
            else "; reference: the base with the adapter disabled (no second model copy)"
        )
    if preference.from_adapter:
        line += f"; continues from {preference.from_adapter}"
    return line


def run_jobs_list(args: argparse.Namespace) -> int:
    from studio.services import create_services  # lazy: keeps studio --help free of sqlalchemy

    runs = create_services().store.list_tuning_runs(limit=100)
    if args.json:
        print(json.dumps([_job_json(r) for r in runs], indent=2, default=str))
        return 0
    print(f"{'ID':>4}  {'STATUS':<11} {'NAME':<24} {'STEP':>9}  {'LOSS':>8} {'EVAL':>8}")
    for r in runs:
        p = r.progress or {}
        step = f"{p.get('step', 0)}/{p.get('total_steps', '?')}"
        loss, eval_loss = _fmt(p.get("loss")), _fmt(p.get("eval_loss"))
        print(f"{r.id:>4}  {r.status:<11} {r.name[:24]:<24} {step:>9}  {loss:>8} {eval_loss:>8}")
    return 0


def _fmt(value: Any) -> str:
    return "-" if value is None else f"{value:.4f}"


def _job_json(run: Any) -> dict[str, Any]:
    return {
        "id": run.id,
        "name": run.name,
        "status": run.status,
        "base_model": run.base_model,
        "adapter_path": run.adapter_path,
        "progress": run.progress,
        "summary": run.summary,
        "error": run.error,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
    }


def run_jobs_action(args: argparse.Namespace) -> int:
    # lazy: the store (sqlalchemy) and the tuning engine stay out of `studio --help`
    from studio.services import create_services
    from studio.tuning.jobs import log_tail

    tuning = create_services().tuning
    run = tuning.store.get_tuning_run(args.run_id)
    if run is None:
        raise ValueError(f"no tuning run with id {args.run_id} (see `studio jobs list`)")
    if args.action == "stop":
        print(f"run #{run.id}: {tuning.stop(run.id)}")
    elif args.action == "resume":
        print(f"run #{run.id}: {tuning.resume(run.id).status}")
    else:
        print(log_tail(run, lines=200))
    return 0
