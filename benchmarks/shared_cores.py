"""Two jobs on one machine: comparisons run while a QLoRA job trains, against each alone.

A user who launches tuning and goes on comparing has two torch processes on the same cores.
This measures, in one run and for each variant of the processes' OpenMP settings:

- a comparison alone (wall time of `studio compare`, 0-shot SST-2, log-likelihood),
- training steps 2-22 of a QLoRA job alone,
- the same steps of the same job (same seed, same batches) while comparisons run back to back,
  and those comparisons' mean wall time.

Two jobs that each use both of 2 cores, sharing them perfectly, would each run ~2x slower; more
than that is time lost to the processes' thread teams getting in each other's way.

    .venv/bin/python benchmarks/shared_cores.py [--limit 120] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STUDIO = str(Path(sys.executable).with_name("studio"))
SST2 = ROOT.parent / "shared" / "data" / "sst2"
MODEL_HOME = Path(os.environ.get("STUDIO_TEST_MODEL_HOME", ROOT / ".venv" / "studio-test-home"))
TUNE = [
    "tune",
    "--data", "studio/samples/reviews.csv",
    "--template", "reviews-sentiment",
    "--max-steps", "1000",
    "--batch-size", "4",
    "--max-length", "128",
    "--eval-split", "0",
    "--save-steps", "100000",
    "--detach",
]  # fmt: skip
# Variant name -> (environment of the comparison, of the training). The studio's entry points
# set OMP_WAIT_POLICY=PASSIVE (studio/runtime/openmp.py) unless the user set OMP_WAIT_POLICY or
# GOMP_SPINCOUNT; GOMP_SPINCOUNT=300000 is libgomp's documented default (OMP_WAIT_POLICY unset),
# so it gives back torch's own behaviour: idle threads spin 300,000 times before they sleep.
TORCH_DEFAULT = {"GOMP_SPINCOUNT": "300000"}
VARIANTS: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "torch defaults": (TORCH_DEFAULT, TORCH_DEFAULT),
    "studio (PASSIVE)": ({}, {}),
}


def _run(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(args[:2])} failed:\n{done.stdout[-1500:]}{done.stderr[-1500:]}"
        )
    return done.stdout


def _compare(env: dict[str, str], limit: int) -> float:
    started = time.perf_counter()
    _run(
        [
            STUDIO, "compare", "--data", str(SST2 / "validation.tsv"),
            "--template", "sst2-sentiment", "--model", "smollm2-135m-instruct",
            "--shots", "0", "--limit", str(limit), "--batch-rows", "16",
        ],
        env,
    )  # fmt: skip
    return time.perf_counter() - started


def _points(home: Path, run_id: int) -> tuple[str, dict[int, datetime]]:
    """The run's status and when each step was logged, read from the store (no subprocess: a
    `studio jobs list` every second would take a core from what is measured)."""
    with sqlite3.connect(home / "studio.db") as db:
        (status,) = db.execute("SELECT status FROM tuning_runs WHERE id = ?", (run_id,)).fetchone()
        rows = db.execute(
            "SELECT step, created_at FROM metric_points WHERE tuning_run_id = ?", (run_id,)
        ).fetchall()
    return status, {step: datetime.fromisoformat(str(at)) for step, at in rows}


def _step_time(home: Path, run_id: int, step: int) -> datetime:
    deadline = time.monotonic() + 1800
    while time.monotonic() < deadline:
        status, points = _points(home, run_id)
        if step in points:
            return points[step]
        if status in ("failed", "completed", "stopped", "interrupted"):
            raise SystemExit(f"the tuning job ended early ({status})")
        time.sleep(1)
    raise SystemExit(f"the tuning job did not reach step {step} in 1800 s")


def _train(
    env: dict[str, str],
    home: Path,
    name: str,
    steps: int,
    meanwhile: Callable[[], object] | None = None,
) -> float:
    """Seconds a new job takes from its step 2 to step 2 + `steps`, with `meanwhile` called over
    and over in that span. Every job has the same seed, so the same batches."""
    _run([STUDIO, *TUNE, "--output", name], env)
    run_id = max(job["id"] for job in json.loads(_run([STUDIO, "jobs", "list", "--json"], env)))
    try:
        begin = _step_time(home, run_id, 2)
        while meanwhile is not None and 2 + steps not in _points(home, run_id)[1]:
            meanwhile()
        return (_step_time(home, run_id, 2 + steps) - begin).total_seconds()
    finally:
        stop = [STUDIO, "jobs", "stop", str(run_id)]
        subprocess.run(stop, cwd=ROOT, env=env, capture_output=True)
        deadline = time.monotonic() + 180  # the worker ends before the next one starts
        while _points(home, run_id)[0] in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(1)


def _variant(
    name: str, envs: tuple[dict[str, str], dict[str, str]], limit: int, steps: int
) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        if (MODEL_HOME / "models").is_dir():  # reuse converted models (else converted once)
            os.symlink(MODEL_HOME / "models", home / "models")
        base = {
            **os.environ,
            "STUDIO_HOME": str(home),
            "STUDIO_ADAPTERS_DIR": str(home / "adapters"),
            "STUDIO_OFFLINE": "1",
            "HF_HUB_OFFLINE": "1",
        }
        env, train_env = {**base, **envs[0]}, {**base, **envs[1]}
        _compare(env, 8)  # warm the page cache with the model files
        alone = _compare(env, limit)
        solo = _train(train_env, home, "solo", steps)
        busy: list[float] = []
        both = _train(train_env, home, "shared", steps, lambda: busy.append(_compare(env, limit)))
    result = {
        "compare alone s": alone,
        "compare while training s": statistics.mean(busy),
        "train alone s": solo,
        "train while comparing s": both,
    }
    print(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in result.items()), flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=120, help="examples in the comparison")
    parser.add_argument("--steps", type=int, default=20, help="training steps measured")
    args = parser.parse_args()
    results = {name: _variant(name, e, args.limit, args.steps) for name, e in VARIANTS.items()}
    base = results["torch defaults"]
    cores = os.cpu_count()
    print(f"\n{args.limit}-example comparison and a QLoRA job (SmolLM2 4-bit) on {cores} cores")
    print(
        f"{'variant':<26} {'compare alone':>14} {'while training':>15} {'slowdown':>9} "
        f"{'train alone':>12} {'while comparing':>16} {'slowdown':>9}"
    )
    for name, r in results.items():
        c1, c2 = r["compare alone s"], r["compare while training s"]
        t1, t2 = r["train alone s"], r["train while comparing s"]
        print(
            f"{name:<26} {c1:>13.1f}s {c2:>14.1f}s {c2 / c1:>8.2f}x "
            f"{t1:>11.1f}s {t2:>15.1f}s {t2 / t1:>8.2f}x"
        )
    print(f"(training steps 2-{2 + args.steps}; alone, against torch defaults: " + ", ".join(
        f"{n} compare {r['compare alone s'] / base['compare alone s']:.2f}x, "
        f"train {r['train alone s'] / base['train alone s']:.2f}x"
        for n, r in results.items() if n != "torch defaults"
    ) + ")")  # fmt: skip


if __name__ == "__main__":
    main()
