"""UI responsiveness while training: p95 latency of simple UI requests against a real
`python app.py`, first with nothing else running (the baseline), then while a real QLoRA job
trains on the same machine, in the same run. Target: p95 under 100 ms.

Two requests: the page config a browser fetches when a tab opens (GET /config), and the History
panel's search through the Gradio queue and the store (the /history event), sent the way a browser
tab sends it: join the queue, then read the result stream, under the tab's one session. (Not via
gradio_client: it polls its own result buffer every 50 ms, which would measure the client.)

    .venv/bin/python benchmarks/ui_latency.py [--requests 200]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
STUDIO = str(Path(sys.executable).with_name("studio"))
MODEL_HOME = Path(os.environ.get("STUDIO_TEST_MODEL_HOME", ROOT / ".venv" / "studio-test-home"))
TUNE = [
    "tune",
    "--data",
    "studio/samples/reviews.csv",
    "--template",
    "reviews-sentiment",
    "--output",
    "latency-bench",
    "--max-steps",
    "400",
    "--batch-size",
    "4",
    "--max-length",
    "128",
    "--eval-split",
    "0",
    "--save-steps",
    "1000",
    "--detach",
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(home: Path, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "STUDIO_HOME": str(home),
        "STUDIO_ADAPTERS_DIR": str(home / "adapters"),
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "STUDIO_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
        "GRADIO_ANALYTICS_ENABLED": "False",
    }


def _serve(env: dict[str, str], url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the studio did not start:\n{log.read_text()[-2000:]}")


def _timed(request: Callable[[], object], n: int) -> list[float]:
    request()  # warm up (first connection, first query)
    times = []
    for _ in range(n):
        started = time.perf_counter()
        request()
        times.append((time.perf_counter() - started) * 1000)
        time.sleep(0.01)  # a user, not a flood
    return times


def _queued_event(url: str, api_name: str, data: list[object]) -> Callable[[], object]:
    """One browser tab's event: POST /queue/join, then stream /queue/data to the completion."""
    config = httpx.get(url + "config").json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
    session = uuid.uuid4().hex[:11]
    http = httpx.Client(base_url=url + "gradio_api", timeout=30)

    def event() -> object:
        body = {"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None}
        http.post("/queue/join", json=body).raise_for_status()
        with http.stream("GET", "/queue/data", params={"session_hash": session}) as stream:
            for line in stream.iter_lines():
                if line.startswith("data:") and '"process_completed"' in line:
                    message = json.loads(line[5:])
                    if not message.get("success"):
                        raise SystemExit(f"the {api_name} event failed: {message}")
                    return message["output"]
        raise SystemExit(f"the {api_name} event's stream ended without a result")

    return event


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def _job(env: dict[str, str]) -> dict[str, object]:
    listed = subprocess.run(
        [STUDIO, "jobs", "list", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(listed.stdout)[0]


def _wait_training(env: dict[str, str]) -> dict[str, object]:
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        job = _job(env)
        if job["status"] == "running" and (job["progress"] or {}).get("step", 0) >= 1:  # type: ignore[union-attr]
            return job
        if job["status"] in ("failed", "completed", "stopped"):
            raise SystemExit(f"the tuning job ended before the measurement: {job}")
        time.sleep(1)
    raise SystemExit("the tuning job did not start training in 600 s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200, help="requests per measurement")
    n = parser.parse_args().requests
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "home"
        home.mkdir()
        if (MODEL_HOME / "models").is_dir():  # reuse converted models (else converted once)
            os.symlink(MODEL_HOME / "models", home / "models")
        port = _port()
        env, url = _env(home, port), f"http://127.0.0.1:{port}/"
        server = _serve(env, url, Path(tmp) / "server.log")
        try:
            requests = {
                "GET /config": lambda: urllib.request.urlopen(url + "config", timeout=10).read(),
                "/history (queue + store)": _queued_event(url, "history", [""]),
            }
            idle = {name: _timed(request, n) for name, request in requests.items()}
            subprocess.run([STUDIO, *TUNE], cwd=ROOT, env=env, check=True, capture_output=True)
            started = _wait_training(env)
            busy = {name: _timed(request, n) for name, request in requests.items()}
            ended = _job(env)
            subprocess.run(
                [STUDIO, "jobs", "stop", str(started["id"])], cwd=ROOT, env=env, capture_output=True
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    steps = (ended["progress"] or {}).get("step")  # type: ignore[union-attr]
    print(f"UI latency, {n} requests each; a QLoRA job (SmolLM2 4-bit) trained during the second")
    print(f"measurement: it was {ended['status']} at step {steps} when the measurement ended.")
    print(
        f"{'request':<26} {'idle p50':>9} {'idle p95':>9} {'training p50':>13} "
        f"{'training p95':>13} {'ratio p95':>10}"
    )
    for name in requests:
        a, b = idle[name], busy[name]
        print(
            f"{name:<26} {statistics.median(a):>7.1f}ms {_p95(a):>7.1f}ms "
            f"{statistics.median(b):>11.1f}ms {_p95(b):>11.1f}ms {_p95(b) / _p95(a):>9.2f}x"
        )
    print("target: p95 under 100 ms while training")


if __name__ == "__main__":
    main()
