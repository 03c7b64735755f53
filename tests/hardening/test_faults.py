"""Faults on real processes: SIGKILL `studio compare`, a `python app.py` server mid-comparison and
`studio tune` with its worker mid-training; a database locked by another connection past the
busy timeout; a full disk (a real tmpfs, as root) and a file-size limit (RLIMIT_FSIZE, any user).
After each, every finished row is still there, the run is marked interrupted (never done) and
resumes without a duplicate row (a resumed tuning run restarts at its checkpoint's step + 1 and
stores every step once), or the error names the problem and the fix and every table's rows are
byte-for-byte what they were, with PRAGMA integrity_check passing.

An HF_TOKEN in the environment of every killed process must never reach the database or a log.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import threading
from pathlib import Path

import pytest

from studio.compare.config import build_config
from studio.services import create_services
from studio.settings import load_settings
from studio.store import StoreError
from tests import needs
from tests.conftest import ROOT
from tests.hardening.conftest import (
    QUIET_ENV,
    STUDIO,
    files_under,
    integrity_ok,
    linked_home,
    studio_cli,
    table_counts,
    wait_for,
)
from tests.snapshots import assert_unchanged, table_digests

pytestmark = pytest.mark.model

REVIEWS = str(ROOT / "studio" / "samples" / "reviews.csv")
TOKEN = "hf_faultSuiteSecret9876543210abcdef"
SECRET_ENV = {"HF_TOKEN": TOKEN}


def _rows(db: Path, run_id: int) -> list[tuple]:
    """(id, config_id, example_index, prediction, prompt_text) of a run's stored results."""
    with sqlite3.connect(db, timeout=30) as conn:
        return conn.execute(
            "select r.id, r.config_id, r.example_index, r.prediction, r.prompt_text "
            "from comparison_results r join comparison_configs c on c.id = r.config_id "
            "where c.run_id = ? order by r.id",
            (run_id,),
        ).fetchall()


def _run(db: Path, run_id: int) -> tuple[str, str | None, int]:
    with sqlite3.connect(db, timeout=30) as conn:
        status, error, n = conn.execute(
            "select status, error, n_examples from comparison_runs where id = ?", (run_id,)
        ).fetchone()
    return status, error, n


def _latest_run_id(db: Path) -> int | None:
    if not db.exists():
        return None
    try:
        with sqlite3.connect(db, timeout=30) as conn:
            row = conn.execute("select max(id) from comparison_runs").fetchone()
    except sqlite3.OperationalError:  # the tables are still being created
        return None
    return row[0] if row else None


def _rows_stored(db: Path, at_least: int) -> int | None:
    run_id = _latest_run_id(db)
    if run_id is None:
        return None
    return run_id if len(_rows(db, run_id)) >= at_least else None


def _assert_resumes_without_loss(home: Path, run_id: int, before: list[tuple], configs: int):
    db = home / "studio.db"
    status, error, n_examples = _run(db, run_id)
    assert status == "interrupted", (status, error)
    assert error and "ended before it finished" in error
    assert _rows(db, run_id) == before  # every finished row survived the kill, unchanged
    resumed = studio_cli("compare", "--resume", str(run_id), home=home, env=SECRET_ENV)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"run #{run_id}: completed" in resumed.stdout
    after = _rows(db, run_id)
    keys = [(config_id, index) for _id, config_id, index, _p, _t in after]
    assert len(keys) == len(set(keys)) == n_examples * configs  # complete, nothing twice
    assert after[: len(before)] == before  # the rows from before the kill were kept as they were
    assert _run(db, run_id)[0] == "completed"
    assert integrity_ok(db)


def _assert_token_nowhere(home: Path, *logs: str) -> None:
    for name in files_under(home):
        path = home / name
        if path.is_file() and not path.is_symlink():
            assert TOKEN.encode() not in path.read_bytes(), f"the HF token leaked into {name}"
    for text in logs:
        assert TOKEN not in text


def test_sigkilled_compare_keeps_its_rows_and_resumes(tmp_path: Path, model_home: Path) -> None:
    home = linked_home(tmp_path / "home", model_home)
    env = {**os.environ, **QUIET_ENV, **SECRET_ENV, "STUDIO_HOME": str(home)}
    args = [STUDIO, "compare", "--data", REVIEWS, "--template", "reviews-sentiment", "--model",
            "smollm2-135m-instruct", "--shots", "0,1", "--limit", "12", "--batch-rows", "2",
            "--pool-size", "20"]  # fmt: skip
    log = tmp_path / "compare.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        run_id = wait_for("4 stored rows", lambda: _rows_stored(home / "studio.db", 4), 800)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    before = _rows(home / "studio.db", run_id)
    assert 4 <= len(before) < 24
    listed = studio_cli("runs", "list", "--json", home=home)  # the studio starting again
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)[0]["status"] == "interrupted"
    _assert_resumes_without_loss(home, run_id, before, configs=2)
    _assert_token_nowhere(home, log.read_text())


def _start_comparison(url: str, name: str, limit: int) -> threading.Thread:
    """The Compare tab's Start through the API, in a thread (its server will die under it)."""
    from gradio_client import Client

    from tests.hardening.test_load import compare_args

    client = Client(url, verbose=False)
    job = client.submit(*compare_args(name, limit=limit, batch_rows=2), api_name="/compare")

    def follow() -> None:
        with contextlib.suppress(Exception):  # the server is killed mid-run: the link drops
            job.result(timeout=600)

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    return thread


def test_sigkilled_server_mid_comparison_keeps_rows_and_resumes(make_server) -> None:
    server = make_server(env=SECRET_ENV)
    db = server.home / "studio.db"
    _start_comparison(server.url, "killed-with-its-server", limit=16)
    run_id = wait_for("4 rows stored by the server", lambda: _rows_stored(db, 4), 800)
    server.kill()
    before = _rows(db, run_id)
    assert 4 <= len(before) < 16

    server.start()  # restarting marks the dead server's run interrupted
    assert _run(db, run_id)[0] == "interrupted"
    _assert_resumes_without_loss(server.home, run_id, before, configs=1)
    server.stop()
    _assert_token_nowhere(server.home)


def test_sigkilled_tune_and_worker_are_interrupted_then_resume(
    tmp_path: Path, model_home: Path
) -> None:
    """`studio tune` and its worker die together (the machine's user pressed kill -9 on both);
    the next `studio jobs` marks the run interrupted, and `studio jobs resume` finishes it from
    its checkpoint. tests/tuning/test_jobs.py kills the worker alone, through the Python API."""
    from studio.store import Store
    from tests.tuning.test_jobs import _wait, assert_resumed_once, checkpoint_step, process_gone

    home = linked_home(tmp_path / "home", model_home)
    adapters = tmp_path / "adapters"
    env = {**os.environ, **QUIET_ENV, **SECRET_ENV, "STUDIO_HOME": str(home),
           "STUDIO_ADAPTERS_DIR": str(adapters)}  # fmt: skip
    args = [STUDIO, "tune", "--data", REVIEWS, "--template", "reviews-sentiment", "--output",
            "killed-tune", "--limit", "40", "--eval-split", "0", "--batch-size", "4",
            "--max-length", "96", "--max-steps", "6", "--save-steps", "2",
            "--lora-r", "4"]  # fmt: skip
    log = tmp_path / "tune.log"
    with log.open("w") as out:
        cli = subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    store = wait_for("the store", lambda: (home / "studio.db").exists() and Store(
        f"sqlite:///{home / 'studio.db'}"), 120)  # fmt: skip
    try:
        run = wait_for("a queued run", lambda: (store.list_tuning_runs(limit=1) or [None])[0], 120)
        running = _wait(store, run.id, lambda r: (r.progress or {}).get("step", 0) >= 3, 800)
        assert running.pid is not None
        os.kill(running.pid, signal.SIGKILL)
        cli.send_signal(signal.SIGKILL)
        cli.wait(timeout=30)
        wait_for("the killed worker to be gone", lambda: process_gone(running.pid), 60)

        listed = studio_cli(
            "jobs", "list", "--json", home=home, env={"STUDIO_ADAPTERS_DIR": str(adapters)}
        )
        assert listed.returncode == 0, listed.stderr
        (job,) = json.loads(listed.stdout)
        assert job["status"] == "interrupted" and f"pid {running.pid}" in job["error"]
        before = store.metric_points(run.id)
        checkpoint = checkpoint_step(running)
        assert 2 <= checkpoint < 6 and checkpoint % 2 == 0  # --save-steps 2

        resumed = studio_cli("jobs", "resume", str(run.id), home=home, env={
            **SECRET_ENV, "STUDIO_ADAPTERS_DIR": str(adapters)})  # fmt: skip
        assert resumed.returncode == 0, resumed.stderr
        done = _wait(store, run.id, lambda r: r.finished, 800)
    finally:
        if cli.poll() is None:
            cli.kill()
        store.close()
    assert done.status == "completed", done.error
    assert_resumed_once(store, done, before, checkpoint, total=6)
    assert (adapters / "killed-tune" / "adapter_model.safetensors").is_file()
    assert integrity_ok(home / "studio.db")
    _assert_token_nowhere(home, log.read_text())


# --- a locked database and a full disk ---------------------------------------------------------


@pytest.fixture
def reviews_studio(tmp_path: Path, model_home: Path):
    """A studio with one finished comparison in its store (the rows a fault must not touch)."""

    def make(home: Path):
        linked_home(home, model_home)
        settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
        services = create_services(settings)
        list(services.comparisons.run(_small("before-the-fault", limit=2)))
        return services

    return make


def _small(name: str, limit: int = 1):
    return build_config(data=REVIEWS, templates=["reviews-sentiment"],
                        models=["smollm2-135m-instruct"], limit=limit, name=name)  # fmt: skip


def test_a_locked_database_is_a_clear_error_not_a_corrupt_store(reviews_studio, tmp_path) -> None:
    services = reviews_studio(tmp_path / "home")
    db = services.settings.home / "studio.db"
    before = table_digests(db)
    holder = sqlite3.connect(db, timeout=1, isolation_level=None)
    holder.execute("begin exclusive")  # another process holding the write lock, for longer
    try:  # than the store's busy timeout (10 s)
        with pytest.raises(StoreError) as info:
            list(services.comparisons.run(_small("while-locked")))
    finally:
        holder.execute("rollback")
        holder.close()
    message = str(info.value)
    assert "database is locked" in message
    assert "no other process holding a long write lock" in message  # the fix
    assert_unchanged({"tables": before}, {"tables": table_digests(db)}, "a locked database")
    list(services.comparisons.run(_small("after-the-lock")))  # the store works again
    assert table_counts(db)["comparison_runs"] == 2
    services.close()


def _fill(folder: Path) -> Path:
    """Write until the file system is full (big chunks, then pages); returns the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (2**20, 4096, 512):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, b"\0" * size)
    finally:
        os.close(fd)
    return filler


FAULT_CHILD = """
import json, signal, sys
from studio.compare.config import build_config
from studio.services import create_services
from studio.settings import load_settings
home = sys.argv[1]
services = create_services(load_settings(home=home, offline=True, adapters_dir=home + "/adapters"))
if sys.argv[3:] == ["rlimit"]:  # no file of this process may grow any more
    import os, resource
    wal = home + "/studio.db-wal"
    size = max(os.path.getsize(wal) if os.path.exists(wal) else 0, 1)
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))
config = build_config(data=sys.argv[2], templates=["reviews-sentiment"],
                      models=["smollm2-135m-instruct"], limit=1, name="on-a-full-disk")
try:
    list(services.comparisons.run(config))
    print(json.dumps({"error": None}))
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
"""


def _comparison_meets_the_fault(reviews_studio, home: Path, fault: str, fill: Path | None) -> str:
    """A studio with one finished run; a new comparison in a fresh process meets `fault`
    ('full': the disk under `fill` is filled first; 'rlimit': the process may grow no file). Its
    error must name the fix, and every table must hold exactly the rows it held before."""
    services = reviews_studio(home)
    db = services.settings.home / "studio.db"
    services.close()
    with sqlite3.connect(db) as conn:  # an empty WAL: the next write must grow a file
        conn.execute("pragma wal_checkpoint(truncate)")
    before = table_digests(db)
    filler = _fill(fill) if fill is not None else None

    child = subprocess.run(
        [str(Path(STUDIO).with_name("python")), "-c", FAULT_CHILD, str(home), REVIEWS,
         *(["rlimit"] if fault == "rlimit" else [])],
        capture_output=True, text=True, cwd=ROOT, env={**os.environ, **QUIET_ENV}, timeout=300,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    error = json.loads(child.stdout.strip().splitlines()[-1])["error"]
    assert error is not None and error.startswith("StoreError"), error
    assert "free disk space" in error  # the fix
    if filler is not None:
        filler.unlink()
    assert_unchanged({"tables": before}, {"tables": table_digests(db)}, f"the {fault} fault")
    # With room again, the same studio works on: a new run stores its rows.
    services = create_services(services.settings)
    list(services.comparisons.run(_small("after-the-fault")))
    assert table_counts(db)["comparison_runs"] == 2
    services.close()
    return error


def test_a_full_disk_is_a_clear_error_not_a_corrupt_store(reviews_studio, tmp_path) -> None:
    """A 24 MiB tmpfs that the test fills: SQLite's next write really meets ENOSPC."""
    needs.root("mounting a small tmpfs that the test fills (a real full disk)")
    mount = tmp_path / "small-disk"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(mount)],
                             capture_output=True, text=True)  # fmt: skip
    if mounted.returncode != 0:
        needs.missing(f"cannot mount a tmpfs at {mount}: {mounted.stderr.strip()}")
    try:
        error = _comparison_meets_the_fault(reviews_studio, mount / "home", "full", fill=mount)
        assert "database or disk is full" in error  # the problem, as SQLite names it
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_file_size_limit_is_a_clear_error_not_a_corrupt_store(reviews_studio, tmp_path) -> None:
    """RLIMIT_FSIZE in the writing process (no root needed): growing any file fails with EFBIG,
    which SQLite reports as an I/O error: another fault than a full disk, with the same promise."""
    error = _comparison_meets_the_fault(reviews_studio, tmp_path / "home", "rlimit", fill=None)
    assert "disk I/O error" in error  # the problem, as SQLite names it
