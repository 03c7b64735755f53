"""Start-up cost: `studio --help`, and time until `python app.py` serves its first page, compared
with a bare Gradio Blocks app started the same way in the same run (the floor we cannot beat).

    .venv/bin/python benchmarks/startup.py [--runs 3]
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


def first_page_seconds(args: list[str], env: dict[str, str]) -> float:
    port = _port()
    env = {**env, "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    started = time.perf_counter()
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
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


def help_seconds() -> float:
    started = time.perf_counter()
    subprocess.run(
        [str(Path(sys.executable).with_name("studio")), "--help"],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "STUDIO_HOME": home}
        bare_file = Path(home) / "bare_app.py"
        bare_file.write_text(BARE_APP)
        bare = [first_page_seconds([sys.executable, str(bare_file)], env) for _ in range(runs)]
        studio = [first_page_seconds([sys.executable, "app.py"], env) for _ in range(runs)]
    helps = [help_seconds() for _ in range(runs)]
    b, s = statistics.median(bare), statistics.median(studio)
    print(f"studio --help:                     {statistics.median(helps) * 1000:.0f} ms")
    print(f"first page, bare Gradio app:       {b:.2f} s")
    print(f"first page, studio (python app.py): {s:.2f} s  ({s / b:.2f}x the bare app)")


if __name__ == "__main__":
    main()
