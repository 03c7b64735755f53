"""The training process: `python -m studio.tuning.worker RUN_ID` runs one queued tuning run.

Owns a run from claimed to finished. The launcher marks the run running with this process's pid;
the worker checks that claim, loads the base through the studio's model layer, formats the data
exactly as the launch check did, trains with the store callback, saves the adapter folder
atomically, registers it, and records how the run ended — completed, stopped (by the user, with
the adapter saved) or failed with the reason (out of memory, bad data, or a crash with its
traceback tail), never "done" after a failure. As it exits it starts the next queued run.

`--config tune.yaml` instead trains a config directly (no queue), which is how the same entry
point runs on several GPUs: `accelerate launch -m studio.tuning.worker --config tune.yaml`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studio import __version__
from studio.datasets import DatasetError
from studio.hosting import HostingPolicy
from studio.models.adapters import AdapterCard
from studio.models.errors import ModelError
from studio.models.loading import LoadRequest, load_model
from studio.runtime.openmp import use_passive_waits
from studio.settings import Settings, load_settings
from studio.store import AdapterRecord, Store, TuningRun
from studio.templates import TemplateError, configure_rendering
from studio.tuning.card import write_adapter_metadata
from studio.tuning.config import TuneConfig, TuneConfigError, load_tune_config
from studio.tuning.data import TuneDataError, prepare_data
from studio.tuning.distributed import claim_pids, ranks, refuse_unsupported, worker_device
from studio.tuning.jobs import check_launch, queue_run, start_next
from studio.tuning.preference import (
    adapter_to_save,
    build_preference_trainer,
    is_preference,
    preference_accuracy,
    preference_summary,
    prepare_preference,
)
from studio.tuning.trainer import build_trainer, latest_checkpoint, total_steps

CLAIM_WAIT_SECONDS = 30.0


@dataclass(frozen=True)
class Outcome:
    status: str  # completed | stopped
    summary: dict[str, Any]


def say(text: str) -> None:
    stamp = datetime.now().strftime("%H:%M:%S")
    print(f"[{stamp}] {text}", flush=True)


def train_run(run: TuningRun, settings: Settings, store: Store) -> Outcome:
    """Train one run to the end (or to a requested stop) and save its adapter."""
    # lazy: transformers (and with it torch and OpenMP) loads only after use_passive_waits()
    from studio.tuning.callback import StoreCallback
    from studio.tuning.preference_callback import PreferenceCallback  # lazy: as StoreCallback

    config = TuneConfig.model_validate(run.config)
    refuse_unsupported(config.model.quantization)  # FSDP / ZeRO-3 with a 4-bit base
    preference = is_preference(config)  # dpo, orpo or kto: studio.tuning.preference
    started = time.perf_counter()
    request = LoadRequest(
        config.model.spec,
        quantization=config.model.quantization,
        device=_device(),
        trust_remote_code=config.model.trust_remote_code,
    )
    loaded = load_model(request, settings, progress=say)
    say(f"loaded {config.model.spec} ({config.model.quantization}) in {loaded.load_seconds:.1f} s")
    policy = HostingPolicy.from_settings(settings)  # the launch was checked; this re-reads
    configure_rendering(policy.limits)
    prepared: Any = (
        prepare_preference(config, loaded.tokenizer, policy, settings)
        if preference
        else prepare_data(config.data, loaded.tokenizer, policy, seed=config.training.seed)
    )
    say(prepared.summary())
    steps = total_steps(config, len(prepared.train), int(os.environ.get("WORLD_SIZE", "1")))
    callback = (
        PreferenceCallback(store, run.id, steps, say, Path(run.work_dir))
        if preference
        else StoreCallback(store, run.id, steps, say)
    )
    _stop_on_sigterm(store, run.id)
    checkpoints = Path(run.work_dir) / "checkpoints"
    if preference:
        trainer = build_preference_trainer(
            config, loaded, prepared, checkpoints, [callback], settings.adapters_dir
        )
        before = preference_accuracy(trainer.model, prepared.eval, config)
    else:
        trainer = build_trainer(config, loaded, prepared, checkpoints, [callback])
    resume_from = latest_checkpoint(checkpoints) if run.resume else None
    if resume_from is not None:
        say(f"resuming from {resume_from.name}")
    result = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)
    summary = _summary(trainer, result, prepared, started, loaded)
    if preference:
        after = preference_accuracy(trainer.model, prepared.eval, config)
        summary.update(preference_summary(config, before, after))
        adapter_to_save(trainer)
    if not trainer.is_world_process_zero():
        return Outcome("completed", summary)
    _save_adapter(trainer, run, config, prepared, loaded, summary, settings, store)
    status = "stopped" if callback.stopped_by_user else "completed"
    say(f"{status}: adapter saved to {run.adapter_path}")
    return Outcome(status, summary)


def _device() -> str:
    # Under `accelerate launch` each process trains on its own GPU (on the CPU with --cpu).
    from studio.models.device import detect_hardware  # lazy: it imports torch

    return worker_device(detect_hardware())


def _stop_on_sigterm(store: Store, run_id: int) -> None:
    # `kill <pid>` (or a service manager) asks for a graceful stop: finish the step, save.
    def request_stop(_signum: int, _frame: Any) -> None:
        store.request_tuning_stop(run_id)

    # Under a launcher every rank gets the signal; rank 0 asks for the stop, which reaches the
    # others at the step's end (StoreCallback), so they finish the step with it, not die in it.
    signal.signal(signal.SIGTERM, request_stop if ranks().is_main else signal.SIG_IGN)


def _summary(
    trainer: Any, result: Any, prepared: Any, started: float, loaded: Any
) -> dict[str, Any]:
    history = trainer.state.log_history
    losses = [entry["loss"] for entry in history if "loss" in entry]
    evals = [entry["eval_loss"] for entry in history if "eval_loss" in entry]
    runtime = float(result.metrics.get("train_runtime") or 0.0)
    tokens = next((e["num_tokens"] for e in reversed(history) if "num_tokens" in e), None)
    if prepared.eval:  # every rank: evaluation gathers across processes
        evals.append(float(trainer.evaluate()["eval_loss"]))
    return {
        "steps": int(trainer.state.global_step),
        "epochs": float(trainer.state.epoch or 0.0),
        "train_loss": float(losses[-1]) if losses else None,
        "first_train_loss": float(losses[0]) if losses else None,
        "mean_train_loss": float(result.training_loss),
        "eval_loss": float(evals[-1]) if evals else None,
        "tokens": int(tokens) if tokens is not None else None,
        "tokens_per_second": float(tokens) / runtime if tokens and runtime else None,
        "train_seconds": runtime,
        "wall_seconds": time.perf_counter() - started,
        "n_train": len(prepared.train),
        "n_eval": len(prepared.eval),
        "device": loaded.plan.device,
    }


def _save_adapter(
    trainer: Any,
    run: TuningRun,
    config: TuneConfig,
    prepared: Any,
    loaded: Any,
    summary: dict[str, Any],
    settings: Settings,
    store: Store,
) -> None:
    """Write the adapter into a temp folder beside its target, then swap it into place."""

    target = Path(run.adapter_path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    trainer.model.save_pretrained(staging)
    loaded.tokenizer.save_pretrained(staging)
    template = prepared.template
    card = AdapterCard(
        name=config.name,
        base_model=config.model.spec,
        base_location=loaded.location,
        quantization=config.model.quantization,
        config=config.to_dict(),
        template_name=template.name if template else None,
        template_hash=template.content_hash() if template else None,
        template_yaml=template.to_yaml() if template else None,
        dataset_name=prepared.dataset.name,
        dataset_path=prepared.dataset.path,
        dataset_hash=prepared.dataset.content_hash,
        n_train=len(prepared.train),
        n_eval=len(prepared.eval),
        metrics=summary,
        run_id=run.id,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        studio_version=__version__,
    )
    write_adapter_metadata(staging, card)
    _swap_into_place(staging, target)
    store.register_adapter(
        AdapterRecord(
            name=config.name,
            path=str(target),
            base_model=config.model.spec,
            tuning_run_id=run.id,
            dataset_id=run.dataset_id,
            template_version_id=run.template_version_id,
            metrics=summary,
        )
    )


def _swap_into_place(staging: Path, target: Path) -> None:
    old = target.parent / f".{target.name}.old-{os.getpid()}"
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def describe_failure(exc: BaseException) -> str:
    """Why a run failed, in words a user can act on."""

    text = str(exc).strip()
    if "out of memory" in text.lower() or type(exc).__name__ == "OutOfMemoryError":
        return (
            f"out of memory: {text.splitlines()[0] if text else type(exc).__name__}. Fix: lower "
            "batch_size or max_length (raise grad_accumulation to keep the effective batch), "
            "use 4bit quantization, or turn on gradient_checkpointing"
        )
    if isinstance(exc, (TuneDataError, DatasetError, TemplateError)):
        return f"bad data: {text}"
    if isinstance(exc, ModelError):
        return f"model could not be loaded: {text}"
    if isinstance(exc, TuneConfigError):  # e.g. a sharded launch of a 4-bit base
        return f"refused: {text}"
    tail = "".join(traceback.format_exception(exc)[-12:]).rstrip()
    return f"crashed: {type(exc).__name__}: {text}\n--- traceback (last lines) ---\n{tail}"


def _claimed(store: Store, run_id: int) -> TuningRun | None:
    """The run, once the launcher has marked it running with this process's pid."""
    deadline = time.monotonic() + CLAIM_WAIT_SECONDS
    while time.monotonic() < deadline:
        run = store.get_tuning_run(run_id)
        if run is None or run.status not in ("queued", "running"):
            return None
        if run.status == "running" and run.pid in claim_pids():
            return run
        time.sleep(0.2)
    return None


def run_queued(run_id: int, settings: Settings) -> int:
    store = Store(settings.database_url)
    try:
        run = _claimed(store, run_id)
        if run is None:
            say(f"run {run_id} was not handed to this worker (pid {os.getpid()}); exiting")
            return 1
        code = _run_and_record(run, settings, store)
        if ranks().is_main:  # the other ranks of a launch write nothing, the queue included
            start_next(settings, store)
        return code
    finally:
        store.close()


def _run_and_record(run: TuningRun, settings: Settings, store: Store) -> int:
    say(f"run {run.id} ({run.name}) started in pid {os.getpid()} on {socket.gethostname()}")
    primary = int(os.environ.get("RANK", "0")) == 0  # only one process of a multi-GPU run records
    try:
        outcome = train_run(run, settings, store)
    except BaseException as exc:  # record every failure, including KeyboardInterrupt
        reason = describe_failure(exc)
        say(f"failed: {reason}")
        if primary:
            store.finish_tuning_run(run.id, "failed", error=reason)
        return 1
    if primary:
        store.finish_tuning_run(run.id, outcome.status, summary=outcome.summary)
    return 0


def run_direct(config_path: str, settings: Settings) -> int:
    """Train a YAML config without the queue (one process per GPU under accelerate)."""

    world = ranks().world_size
    config = load_tune_config(config_path)
    refuse_unsupported(config.model.quantization)  # on every rank, before anything is stored
    # The run records how many processes train it, so a resume launches as many.
    training = config.training.model_copy(update={"processes": world})
    config = config.model_copy(update={"training": training})
    store = Store(settings.database_url)
    try:
        if ranks().is_main:
            policy = HostingPolicy.from_settings(settings)
            check = check_launch(config, settings, policy, overwrite=True)
            queued = queue_run(check, settings, store, policy)
            store.start_tuning_run(queued.id, host=socket.gethostname(), pid=os.getpid())
            os.environ["STUDIO_DIRECT_RUN_ID"] = str(queued.id)
        run = store.get_tuning_run(_shared_run_id())
        assert run is not None
        return _run_and_record(run, settings, store)
    finally:
        store.close()


def _shared_run_id() -> int:
    """Rank 0 creates the run; the other ranks learn its id through torch.distributed."""
    local = int(os.environ.get("STUDIO_DIRECT_RUN_ID", "0"))
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return local
    import torch.distributed as dist  # lazy: torch is slow to import; only model work needs it

    if not dist.is_initialized():
        dist.init_process_group()
    box = [local]
    dist.broadcast_object_list(box, src=0)
    return int(box[0])


def main(argv: Sequence[str] | None = None) -> int:
    use_passive_waits()  # before torch is imported (see studio/runtime/openmp.py)
    parser = argparse.ArgumentParser(prog="python -m studio.tuning.worker")
    parser.add_argument("run_id", nargs="?", type=int, help="queued run to train")
    parser.add_argument("--config", help="train this tune.yaml directly (accelerate launch)")
    args = parser.parse_args(argv)
    settings = load_settings()
    if args.config:
        try:
            return run_direct(args.config, settings)
        except TuneConfigError as exc:  # refused before anything was stored
            print(f"error: {exc}", file=sys.stderr, flush=True)
            return 2
    if args.run_id is None:
        parser.error("give a RUN_ID or --config")
    return run_queued(args.run_id, settings)


if __name__ == "__main__":
    sys.exit(main())
