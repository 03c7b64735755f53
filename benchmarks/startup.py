"""Start-up cost: `studio --help`, and time until `python app.py` serves its first page, compared
with a bare Gradio Blocks app started the same way in the same run (the floor we cannot beat).
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


def measure(tree: Path, env: dict[str, str], runs: int) -> tuple[float, float]:
    """(median `studio --help` seconds, median seconds to the first page) for one checkout."""
    env = {**env, "PYTHONPATH": str(tree)}
    pages = [first_page_seconds([sys.executable, "app.py"], env, tree) for _ in range(runs)]
    helps = [help_seconds(tree, env) for _ in range(runs)]
    return statistics.median(helps), statistics.median(pages)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline", type=Path, help="another checkout to measure in this run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "STUDIO_HOME": home}
        bare_file = Path(home) / "bare_app.py"
        bare_file.write_text(BARE_APP)
        bare = [first_page_seconds([sys.executable, str(bare_file)], env) for _ in range(args.runs)]
        b = statistics.median(bare)
        print(f"first page, bare Gradio app:        {b:.2f} s")
        trees = [("this tree", ROOT)] + ([("baseline", args.baseline)] if args.baseline else [])
        for label, tree in trees:
            help_s, page_s = measure(tree, env, args.runs)
            print(f"{label:>10}: studio --help {help_s * 1000:.0f} ms; first page (python app.py) "
                  f"{page_s:.2f} s ({page_s / b:.2f}x the bare app)")  # fmt: skip


if __name__ == "__main__":
    main()
