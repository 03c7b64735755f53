"""Start-up cost: `studio --help`, and time until `python app.py` serves its first page, compared
with a bare Gradio Blocks app started the same way in the same run (the floor we cannot beat).
The first page is timed twice: with a fresh STUDIO_HOME (a new user, a new Space: no database
yet) and with a warm one (the studio started there before).
`--baseline TREE` measures another checkout of the studio (e.g. `git worktree add /tmp/before
<commit>`) in the same run, with the same Python, so a change's cost is a ratio, not a guess.

    .venv/bin/python benchmarks/startup.py [--runs 3] [--baseline /tmp/before]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BARE_APP = "import gradio as gr\nwith gr.Blocks() as app:\n    gr.Markdown('hi')\napp.launch()\n"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def first_page_seconds(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> float:
    port = _port()
    env = {**env, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1) as r:
                    if r.status == 200:
                        return time.perf_counter() - started
            except OSError:
                time.sleep(0.05)
    finally:
        proc.terminate()
        proc.wait()


def help_seconds(tree: Path, env: dict[str, str]) -> float:
    """`studio --help` as the console script runs it, from `tree`'s code."""
    module = "studio.cli.main" if (tree / "studio" / "cli" / "main.py").is_file() else "studio.cli"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", module, "--help"],
        check=True,
        cwd=tree,
        env={**env, "PYTHONPATH": str(tree)},
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def measure(tree: Path, env: dict[str, str], runs: int) -> tuple[float, float, float]:
    """Medians of `studio --help`, the first page from a fresh STUDIO_HOME and from a warm one,
    in seconds, for one checkout."""
    env = {**env, "PYTHONPATH": str(tree)}
    app = [sys.executable, "app.py"]
    fresh, warm = [], []
    with tempfile.TemporaryDirectory() as warm_home:
        first_page_seconds(app, {**env, "STUDIO_HOME": warm_home}, tree)  # makes it warm
        for _ in range(runs):
            with tempfile.TemporaryDirectory() as new_home:
                fresh.append(first_page_seconds(app, {**env, "STUDIO_HOME": new_home}, tree))
            warm.append(first_page_seconds(app, {**env, "STUDIO_HOME": warm_home}, tree))
    helps = [help_seconds(tree, env) for _ in range(runs)]
    return statistics.median(helps), statistics.median(fresh), statistics.median(warm)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure in this run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "STUDIO_HOME": home}
        bare_file = Path(home) / "bare_app.py"
        bare_file.write_text(BARE_APP)
        bare = [sys.executable, str(bare_file)]
        # The bare app runs before and after the studio, so a machine that slows down meanwhile
        # moves both sides of the ratio.
        bare_s = [first_page_seconds(bare, env) for _ in range(args.runs)]
        trees = [("this tree", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
        results = [(label, measure(tree, env, args.runs)) for label, tree in trees]
        bare_s += [first_page_seconds(bare, env) for _ in range(args.runs)]
        b = statistics.median(bare_s)
        print(f"first page, bare Gradio app:        {b:.2f} s")
        for label, (help_s, fresh, warm) in results:
            print(f"{label:>10}: studio --help {help_s * 1000:.0f} ms; first page (python app.py) "
                  f"fresh STUDIO_HOME {fresh:.2f} s ({fresh / b:.2f}x the bare app), "
                  f"warm {warm:.2f} s ({warm / b:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
