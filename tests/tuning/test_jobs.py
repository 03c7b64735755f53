"""Real QLoRA jobs: 4-bit SmolLM2 on CPU, each run in its own worker process.

Covers what a user relies on: loss goes down, the saved adapter reloads with plain PEFT and
changes the model's output, stop saves the adapter and marks the run stopped, a SIGKILLed
worker is marked interrupted at the next start and resumes from its checkpoint (each step then
in the store once and in order, the first resumed step the checkpoint's step + 1), a failure
says why, and queued jobs wait their turn and can be cancelled (never started after the
worker that could start them has exited).
"""

from __future__ import annotations

import json
import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from studio.hosting import HostingPolicy
from studio.settings import Settings
from studio.store import MetricPoint, Store, TuningRun
from studio.tuning.config import TuneConfig, flat_config
from studio.tuning.jobs import check_launch, queue_run, resume_run, start_next
from studio.tuning.trainer import latest_checkpoint
from tests import needs
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.model

TRAIN = SHARED_DATA / "sst2" / "train.tsv"


@pytest.fixture(autouse=True)
def _train_data() -> None:
    """Every job here trains on SST-2: skip without it (fail under CI=true)."""
    needs.shared_data("sst2", "train.tsv")


def _config(name: str, **overrides: object) -> TuneConfig:
    values: dict[str, object] = {
        "name": name,
        "model": "smollm2-135m-instruct",
        "quantization": "4bit",
        "data": str(TRAIN),
        "template": "sst2-sentiment",
        "limit": 40,
        "eval_split": 0.2,
        "batch_size": 4,
        "max_length": 128,
        "max_steps": 6,
        "lr": 1e-3,
        "lora_r": 8,
        "eval_steps": 3,
        "save_steps": 2,
    }
    values.update(overrides)
    return flat_config(**values)


@pytest.fixture
def store(settings: Settings):
    opened = Store(settings.database_url)
    yield opened
    opened.close()


def _launch(config: TuneConfig, settings: Settings, store: Store) -> TuningRun:
    run = queue_run(
        check_launch(config, settings, HostingPolicy.desktop()),
        settings,
        store,
        HostingPolicy.desktop(),
    )
    start_next(settings, store)
    return run


def _wait(
    store: Store, run_id: int, until: Callable[[TuningRun], bool], timeout: float = 300
) -> TuningRun:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        run = store.get_tuning_run(run_id)
        assert run is not None
        if until(run):
            return run
        time.sleep(0.5)
    log = Path(run.work_dir, "train.log").read_text(errors="replace")[-3000:]
    raise AssertionError(f"run {run_id} still {run.status} after {timeout} s; log:\n{log}")


def _finished(run: TuningRun) -> bool:
    return run.finished


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie its parent has not reaped yet is gone too)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"  # the state field follows "(comm)"


def wait_gone(pid: int, timeout: float = 60) -> None:
    """Wait for a killed or exiting process to be gone, failing if it outlives `timeout`."""
    deadline = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process {pid} is still running {timeout} s later")
        time.sleep(0.1)


def checkpoint_step(run: TuningRun) -> int:
    """The step the run's newest checkpoint holds: its folder name, confirmed by the
    trainer_state.json inside (what the resumed Trainer restores)."""
    folder = latest_checkpoint(Path(run.work_dir) / "checkpoints")
    assert folder is not None, f"run {run.id} left no checkpoint to resume from"
    state = json.loads((folder / "trainer_state.json").read_text())
    assert state["global_step"] == int(folder.name.removeprefix("checkpoint-")), folder
    return int(state["global_step"])


def train_points(store: Store, run_id: int) -> list[MetricPoint]:
    return [p for p in store.metric_points(run_id) if p.loss is not None]


def assert_resumed_once(
    store: Store, run: TuningRun, before: list[MetricPoint], checkpoint: int, total: int
) -> None:
    """A run killed after `before` was stored and resumed from checkpoint-`checkpoint`: every
    logged step is stored exactly once, in order, at the logging interval up to `total`; the
    points up to the checkpoint are the very ones stored before the kill; the resumed worker's
    first point is the checkpoint's step + 1, and its log agrees."""
    every = int(run.config["training"]["logging_steps"])
    points = train_points(store, run.id)
    steps = [p.step for p in points]
    assert steps == list(range(every, total + 1, every)), f"stored steps after resume: {steps}"
    kept = [p for p in before if p.loss is not None and p.step <= checkpoint]
    assert kept and points[: len(kept)] == kept, "the points before the checkpoint changed"
    resumed = [p for p in points if p not in before]
    assert resumed and resumed == points[len(kept) :], "a point from before the kill was kept"
    first = (checkpoint // every + 1) * every  # checkpoint + 1 when every step is logged
    assert resumed[0].step == first, f"resumed at step {resumed[0].step}, not {first}"
    log = Path(run.work_dir, "train.log").read_text(errors="replace")
    marker = f"resuming from checkpoint-{checkpoint}\n"
    assert log.count(marker) == 1, f"the log does not say once that it {marker!r}"
    logged = [int(n) for n in re.findall(r"\] step (\d+)/\d+ · loss ", log.split(marker)[1])]
    assert logged == steps[len(kept) :], f"steps the resumed worker logged: {logged}"


def test_qlora_job_trains_saves_and_reloads_with_plain_peft(
    settings: Settings, store: Store
) -> None:
    run = _launch(_config("sst2-qlora"), settings, store)
    done = _wait(store, run.id, _finished)
    assert done.status == "completed", done.error
    points = store.metric_points(run.id)
    losses = [p.loss for p in points if p.loss is not None]
    evals = [p.eval_loss for p in points if p.eval_loss is not None]
    assert len(losses) == 6 and len(evals) >= 2
    assert sum(losses[-2:]) / 2 < losses[0]  # it learns the answer format
    assert evals[-1] < losses[0]  # held-out loss ends below where training started
    assert done.summary and done.summary["steps"] == 6 and done.summary["tokens_per_second"] > 0

    folder = Path(done.adapter_path)
    assert folder == settings.adapters_dir / "sst2-qlora"
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md", "studio.json"} <= {
        p.name for p in folder.iterdir()
    }
    _assert_only_lora_weights_saved_and_trained(folder)
    _assert_plain_peft_reload_changes_output(folder, Path(check_launch_location(settings)))

    [adapter] = store.list_adapter_records()
    assert adapter.path == str(folder) and adapter.tuning_run_id == run.id
    assert adapter.dataset_id == done.dataset_id is not None
    assert adapter.template_version_id == done.template_version_id is not None
    _assert_adapter_is_a_column_beside_its_base(settings, "adapters/sst2-qlora")


def _assert_adapter_is_a_column_beside_its_base(settings: Settings, spec: str) -> None:
    import threading

    from studio.compare.config import build_config
    from studio.compare.summary import summarize_run
    from studio.models.catalog import list_models
    from studio.services import create_services

    assert spec in [entry.spec for entry in list_models(settings.models_dir, settings.adapters_dir)]
    config = build_config(
        data=str(SHARED_DATA / "sst2" / "validation.tsv"),
        templates=["sst2-sentiment"],
        models=["smollm2-135m-instruct", spec],
        limit=12,
    )
    services = create_services(settings)
    try:
        events = list(services.comparisons.run(config, threading.Event()))
        run_id = events[0].run_id  # type: ignore[attr-defined]
        summaries = summarize_run(services.store, run_id)
    finally:
        services.close()
    assert [s.model for s in summaries] == ["smollm2-135m-instruct", spec]
    assert all(s.n == 12 for s in summaries)


def check_launch_location(settings: Settings) -> Path:
    return settings.models_dir / "smollm2-135m-instruct"


def _assert_only_lora_weights_saved_and_trained(folder: Path) -> None:
    from safetensors.torch import load_file

    weights = load_file(folder / "adapter_model.safetensors")
    assert weights and all("lora_" in key for key in weights)  # the base was not saved: frozen
    lora_b = [t for key, t in weights.items() if "lora_B" in key]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)  # B starts at zero: it trained


def _assert_plain_peft_reload_changes_output(folder: Path, base_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ids = tokenizer("the film is a delight", return_tensors="pt").input_ids
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    with torch.no_grad():
        before = base(ids).logits
    tuned = PeftModel.from_pretrained(base, folder)
    with torch.no_grad():
        after = tuned(ids).logits
    assert not torch.allclose(before, after, atol=1e-3)


def test_stop_saves_the_adapter_and_marks_the_run_stopped(settings: Settings, store: Store) -> None:
    run = _launch(_config("stopped-lora", max_steps=500, eval_split=0.0), settings, store)
    _wait(store, run.id, lambda r: (r.progress or {}).get("step", 0) >= 1)
    assert store.request_tuning_stop(run.id) == "running"
    done = _wait(store, run.id, _finished)
    assert done.status == "stopped", done.error
    assert done.summary and 1 <= done.summary["steps"] < 500
    assert (Path(done.adapter_path) / "adapter_model.safetensors").is_file()
    assert list(Path(done.work_dir, "checkpoints").glob("checkpoint-*"))  # resumable


def test_sigkilled_worker_is_interrupted_then_resumes_from_its_checkpoint(
    settings: Settings, store: Store
) -> None:
    from studio.services import create_services

    config = _config("killed-lora", max_steps=8, save_steps=2, eval_split=0.0)
    run = _launch(config, settings, store)
    running = _wait(store, run.id, lambda r: (r.progress or {}).get("step", 0) >= 3)
    assert running.pid is not None
    os.kill(running.pid, signal.SIGKILL)
    wait_gone(running.pid)
    before = store.metric_points(run.id)
    checkpoint = checkpoint_step(running)
    assert 2 <= checkpoint < 8 and checkpoint % 2 == 0  # save_steps=2

    services = create_services(settings)  # the studio starting again
    try:
        killed = services.store.get_tuning_run(run.id)
        assert killed is not None and killed.status == "interrupted"
        assert f"pid {running.pid}" in (killed.error or "")
        resume_run(settings, store, HostingPolicy.desktop(), run.id)
        done = _wait(store, run.id, _finished)
    finally:
        services.close()
    assert done.status == "completed", done.error
    assert done.summary and done.summary["steps"] == 8
    assert_resumed_once(store, done, before, checkpoint, total=8)


def test_a_failed_run_says_why_and_never_reports_done(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    data = tmp_path / "train.tsv"
    lines = TRAIN.read_text(encoding="utf-8").splitlines(keepends=True)[:30]
    data.write_text("".join(lines), encoding="utf-8")
    check = check_launch(
        _config("doomed", data=str(data), limit=20), settings, HostingPolicy.desktop()
    )
    run = queue_run(check, settings, store, HostingPolicy.desktop())
    data.unlink()  # the data disappears between the check and the worker's start
    start_next(settings, store)
    done = _wait(store, run.id, _finished, timeout=120)
    assert done.status == "failed"
    assert done.error and done.error.startswith("bad data:") and "train.tsv" in done.error
    assert not Path(done.adapter_path).exists()
    assert store.list_adapter_records() == []


def test_queued_runs_wait_their_turn_and_can_be_cancelled(settings: Settings, store: Store) -> None:
    first = _launch(_config("first", max_steps=500, eval_split=0.0), settings, store)
    second = _launch(_config("second"), settings, store)
    third = _launch(_config("third"), settings, store)
    running = _wait(store, first.id, lambda r: r.status == "running")
    assert store.get_tuning_run(second.id).status == "queued"  # type: ignore[union-attr]
    assert store.request_tuning_stop(third.id) == "cancelled"
    assert store.request_tuning_stop(second.id) == "cancelled"
    store.request_tuning_stop(first.id)
    assert _wait(store, first.id, _finished).status == "stopped"
    assert running.pid is not None
    wait_gone(running.pid)  # the worker starts the next queued run as it exits: it has now
    for run_id in (second.id, third.id):
        cancelled = store.get_tuning_run(run_id)
        assert cancelled is not None and cancelled.status == "cancelled"
        assert cancelled.started_at is None


def test_two_active_runs_cannot_write_the_same_adapter(settings: Settings, store: Store) -> None:
    from studio.tuning.config import TuneConfigError

    check = check_launch(_config("same-name"), settings, HostingPolicy.desktop())
    queue_run(check, settings, store, HostingPolicy.desktop())  # queued, not started
    with pytest.raises(TuneConfigError, match="already queued or training into adapters/same-name"):
        queue_run(
            check_launch(_config("same-name"), settings, HostingPolicy.desktop()),
            settings,
            store,
            HostingPolicy.desktop(),
        )
    assert len(store.list_tuning_runs()) == 1
