"""Training jobs: checking a launch, the queue, and the worker processes that run it.

Owns the rule "one job trains at a time, the others wait in order". Anyone may advance the queue
(`start_next`): the studio server on a timer, `studio tune`, and every worker as it exits, so
queued jobs run even when no browser or server is open. A file lock makes advancing atomic
across processes. Each job is `python -m studio.tuning.worker RUN_ID`, in its own session (a
closed terminal or a restarted server does not kill it), logging to `<work_dir>/train.log`.
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from filelock import FileLock

from studio.hosting import HostingPolicy
from studio.models.adapters import adapter_path
from studio.models.convert import ensure_converted
from studio.models.device import detect_hardware, plan_device
from studio.models.loading import quantization_config
from studio.models.registry import resolve_spec
from studio.runtime.openmp import with_passive_waits
from studio.settings import Settings
from studio.store import Store, TuningRun
from studio.tuning.config import TuneConfig, TuneConfigError, build_tune_config
from studio.tuning.data import PreparedData, prepare_data
from studio.tuning.distributed import check_processes, launch_prefix
from studio.tuning.memory import MemoryEstimate, estimate_memory
from studio.tuning.preference import is_preference, prepare_preference
from studio.tuning.preference_data import PreparedPreference
from studio.tuning.trainer import total_steps

WORKER_MODULE = "studio.tuning.worker"
LOG_NAME = "train.log"


@dataclass(frozen=True)
class LaunchCheck:
    """A launch that passed every check: its data prepared, its steps counted."""

    config: TuneConfig
    prepared: PreparedData | PreparedPreference
    adapter_dir: Path
    total_steps: int
    location: Any
    memory: MemoryEstimate | None


def base_location(spec: str, settings: Settings) -> Any:
    """Where the base model's files are (converting a bundled GGUF once if needed)."""

    source = resolve_spec(spec, settings.adapters_dir)
    if source.kind == "adapter":
        raise TuneConfigError(
            f"model.spec: '{spec}' is an adapter; train on a base model (the adapter's base is "
            f"{source.base_spec}), or merge the adapter first (studio adapters merge)"
        )
    if source.needs_conversion:
        return ensure_converted(source, settings.models_dir, lambda _msg: None)
    return source.path if source.kind == "local" else source.hub_id


def load_tokenizer(location: Any, trust_remote_code: bool = False) -> Any:
    # lazy: transformers is slow to import; only model work needs it
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(location, trust_remote_code=trust_remote_code)
    except OSError as exc:
        raise TuneConfigError(
            f"model.spec: the tokenizer of '{location}' cannot be loaded offline ({exc}). Fix: use "
            "a bundled model or a local folder, or go online once to cache the model"
        ) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def check_launch(
    config: TuneConfig,
    settings: Settings,
    policy: HostingPolicy,
    overwrite: bool = False,
    tokenizer: Any = None,
) -> LaunchCheck:
    """Every check that can fail before a worker starts: the hosting policy, name, model,
    quantization, data."""
    check_policy(config, policy)

    # The worker may start from another directory (the studio server's), so the run records
    # the data file's absolute path.
    data_path = str(Path(config.data.path).expanduser().resolve())
    config = config.model_copy(update={"data": config.data.model_copy(update={"path": data_path})})
    target = adapter_path(settings.adapters_dir, config.name)
    if target.exists() and not overwrite:
        raise TuneConfigError(
            f"name: adapters/{config.name} already exists. Fix: choose another name, or "
            "overwrite it (--overwrite / the Overwrite box)"
        )
    quantization_config(config.model.quantization, plan_device())
    check_processes(config.training.processes, detect_hardware())
    location = base_location(config.model.spec, settings)
    if tokenizer is None:
        tokenizer = load_tokenizer(location, config.model.trust_remote_code)
    prepared: PreparedData | PreparedPreference
    if is_preference(config):  # pairs or labelled answers (studio.tuning.preference_data)
        prepared = prepare_preference(config, tokenizer, policy, settings)
    else:
        prepared = prepare_data(config.data, tokenizer, policy, seed=config.training.seed)
    steps = total_steps(config, len(prepared.train), config.training.processes)
    try:
        memory: MemoryEstimate | None = estimate_memory(config, location, prepared.stats.max)
    except Exception:  # an estimate must never block a launch the model layer accepts
        memory = None
    return LaunchCheck(config, prepared, target, steps, location, memory)


def check_policy(config: TuneConfig, policy: HostingPolicy) -> None:
    """What a visitor may not ask of a training run: any run on a public demo; server paths
    for the model, data or template; the model's own code."""
    policy.check_training()
    policy.check_model_spec(config.model.spec)
    policy.check_data_path(config.data.path)
    template = config.data.template or ""
    if template.endswith((".yaml", ".yml")) or "/" in template or "\\" in template:
        policy.check_template_path(template)
    policy.check_remote_code(config.model.trust_remote_code)


def queue_run(
    check: LaunchCheck, settings: Settings, store: Store, policy: HostingPolicy
) -> TuningRun:
    """Record the run (with its data and template lineage) in the queue (start_next starts it)."""
    check_policy(check.config, policy)
    refuse_busy_name(check, store)
    prepared = check.prepared
    dataset = prepared.dataset
    dataset_row = store.register_dataset(
        dataset.name,
        dataset.path,
        dataset.format,
        dataset.content_hash,
        len(dataset),
        dataset.columns,
    )
    version_id = None
    if prepared.template is not None:
        template = prepared.template
        version = store.save_template_version(
            template.name, template.to_yaml(), template.content_hash()
        )
        version_id = version.id
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    work_dir = settings.tuning_dir / f"{stamp}-{check.config.name}"
    work_dir.mkdir(parents=True, exist_ok=True)
    (work_dir / "config.yaml").write_text(check.config.to_yaml(), encoding="utf-8")
    run = store.create_tuning_run(
        name=check.config.name,
        config=check.config.to_dict(),
        base_model=check.config.model.spec,
        work_dir=str(work_dir),
        adapter_path=str(check.adapter_dir),
        dataset_id=dataset_row.id,
        template_version_id=version_id,
    )
    store.set_tuning_progress(run.id, {"step": 0, "total_steps": check.total_steps})
    return store.get_tuning_run(run.id) or run


def refuse_busy_name(check: LaunchCheck, store: Store) -> None:
    """A run already queued or training into the same adapter folder keeps it: no second one."""
    busy = [
        run.id
        for status in ("queued", "running")
        for run in store.list_tuning_runs(limit=1000, status=status)
        if run.adapter_path == str(check.adapter_dir)
    ]
    if busy:
        raise TuneConfigError(
            f"name: run #{busy[0]} is already queued or training into adapters/{check.config.name}."
            " Fix: choose another name, or stop that run first"
        )


def worker_alive(host: str | None, pid: int | None) -> bool:
    """Whether a run's worker still runs. Zombies and reused pids count as gone."""
    if host is not None and host != socket.gethostname():
        return True  # another machine's worker: only that machine can tell
    if pid is None:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return _signal_alive(pid)
    state = stat.rsplit(")", 1)[-1].split()[0]
    return state not in ("Z", "X") and WORKER_MODULE in cmdline


def _signal_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def worker_environment(settings: Settings) -> dict[str, str]:
    env = with_passive_waits(os.environ)
    env.update(
        STUDIO_HOME=str(settings.home),
        STUDIO_DB_URL=settings.database_url,
        STUDIO_ADAPTERS_DIR=str(settings.adapters_dir),
        STUDIO_PROMPTS_DIR=str(settings.prompts_dir),
        PYTHONUNBUFFERED="1",
    )
    if settings.offline is not None:
        env["STUDIO_OFFLINE"] = "true" if settings.offline else "false"
    return env


def spawn_worker(run: TuningRun, settings: Settings) -> subprocess.Popen[bytes]:
    work_dir = Path(run.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    with open(work_dir / LOG_NAME, "ab") as log:
        process = subprocess.Popen(
            worker_command(run),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=worker_environment(settings),
            start_new_session=True,  # outlives the terminal or server that launched it
        )
    # Reap the child when it ends so it never lingers as a zombie of this process.
    threading.Thread(target=process.wait, name=f"reap-worker-{run.id}", daemon=True).start()
    return process


def worker_command(run: TuningRun) -> list[str]:
    """`python -m studio.tuning.worker ID`, through `accelerate launch` for several processes."""
    processes = int(run.config.get("training", {}).get("processes", 1))
    return [*launch_prefix(processes), "-m", WORKER_MODULE, str(run.id)]


def start_next(settings: Settings, store: Store) -> TuningRun | None:
    """Start the oldest queued run if no run is training; returns the run started, if any.
    In demo mode nothing starts (runs queued before it was switched on keep waiting)."""
    if settings.demo:
        return None
    settings.tuning_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(settings.tuning_dir / "queue.lock"), timeout=60):
        store.mark_dead_tuning_runs_interrupted(worker_alive)
        if store.list_tuning_runs(limit=1, status="running"):
            return None
        run = store.next_queued_tuning_run()
        if run is None:
            return None
        process = spawn_worker(run, settings)
        if not store.start_tuning_run(run.id, host=socket.gethostname(), pid=process.pid):
            process.kill()  # cancelled between reading the queue and starting it
            return None
        return store.get_tuning_run(run.id)


def stop_run(store: Store, policy: HostingPolicy, run_id: int) -> str:
    """Stop a running job at its next step (it saves its adapter) or cancel a queued one.
    A public demo trains nothing, and its visitors cancel nothing an operator queued."""
    policy.check_training()
    return store.request_tuning_stop(run_id)


def resume_run(settings: Settings, store: Store, policy: HostingPolicy, run_id: int) -> TuningRun:
    """Queue a stopped, failed or interrupted run again; it continues from its checkpoint.
    The stored config meets the same policy as a launch (an imported run's too)."""
    policy.check_training()
    run = store.get_tuning_run(run_id)
    if run is not None:
        check_policy(build_tune_config(run.config), policy)
        if not Path(run.work_dir).is_dir():  # queue_run creates it: an imported run's is not here
            raise TuneConfigError(
                f"run #{run_id}'s checkpoints are not on this machine (it was imported from "
                "another studio, or its folder was removed), so it cannot continue here. Fix: "
                "re-run it (Experiments → Re-run, or studio runs) to train it again from the start"
            )
    store.requeue_tuning_run(run_id)
    start_next(settings, store)
    run = store.get_tuning_run(run_id)
    assert run is not None
    return run


def log_tail(run: TuningRun, lines: int = 40) -> str:
    path = Path(run.work_dir) / LOG_NAME
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 64 * 1024))
            text = handle.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    # Progress bars redraw one line with carriage returns: keep only each line's last frame.
    shown = [line.rstrip("\r").rsplit("\r", 1)[-1] for line in text.split("\n")]
    return "\n".join(shown[-lines:] if shown[-1] else shown[-lines - 1 : -1])
