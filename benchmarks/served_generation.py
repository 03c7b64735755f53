"""Generation scoring through a served model against the local backend, in one run.

- local (baseline): the studio's batched, length-sorted generation in this process;
- served, 1 request at a time: the same prompts through a real `transformers serve` process on the
  same converted model folder, over the OpenAI-compatible HTTP backend;
- served, 4 in flight: the same with `parallel=4` (vLLM and TGI batch concurrent requests;
  `transformers serve` without continuous batching mostly queues them).

    .venv/bin/python benchmarks/served_generation.py [--n 32] [--template sst2-sentiment-completion]

Prints examples/s, the ratio to the baseline and how often each answer equals the baseline's.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(folder: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [str(Path(sys.executable).with_name("transformers")), "serve", str(folder)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu"]
    command += ["--dtype", "float32"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(1200):
        if process.poll() is not None:
            sys.exit(f"transformers serve exited with {process.returncode}")
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                return process, f"{url}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    process.kill()
    sys.exit("transformers serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--template", default="sst2-sentiment-completion")
    parser.add_argument("--n", type=int, default=32)
    parser.add_argument("--max-new-tokens", type=int, default=3)
    args = parser.parse_args()

    from studio.datasets import load_dataset
    from studio.hosting import HostingPolicy
    from studio.inference.backends import LocalBackend, open_served
    from studio.inference.params import SamplingParams
    from studio.models.loading import LoadRequest
    from studio.models.manager import ModelManager
    from studio.settings import load_settings
    from studio.templates import build_prompt, load_template

    DESKTOP = HostingPolicy.desktop()

    home = Path(os.environ.get("STUDIO_TEST_MODEL_HOME") or tempfile.mkdtemp(prefix="bench-"))
    settings = load_settings(home=home, offline=True)
    local = LocalBackend(ModelManager(settings).get(LoadRequest(args.model)))
    template = load_template(args.template)
    rows = load_dataset(str(SST2 / "validation.tsv"), policy=HostingPolicy.desktop()).rows[: args.n]
    prompts = [build_prompt(template, row, [], local.prompt_format).text for row in rows]
    stops = ("\n",) if template.mode == "completion" else ()
    params = SamplingParams(temperature=0, max_new_tokens=args.max_new_tokens, stop=stops)
    process, url = start_server(Path(local.location))
    try:
        variants = [
            ("local backend, batched (baseline)", local, {"batch_size": 8}),
            (
                "served, 1 request at a time",
                open_served(f"openai:{local.location}@{url}?timeout=900&parallel=1", DESKTOP),
                {},
            ),
            (
                "served, 4 requests in flight",
                open_served(f"openai:{local.location}@{url}?timeout=900&parallel=4", DESKTOP),
                {"batch_size": 8},
            ),
        ]
        print(f"{args.model}, {args.template}, {len(prompts)} SST-2 examples, greedy")
        results = []
        for name, backend, kwargs in variants:
            started = time.perf_counter()
            outputs = {
                g.index: g.text for g in backend.generate(prompts, template.mode, params, **kwargs)
            }
            rate = len(prompts) / (time.perf_counter() - started)
            results.append((name, rate, [outputs[i] for i in range(len(prompts))]))
    finally:
        process.terminate()
        process.wait(timeout=30)
    base_rate, base_out = results[0][1], results[0][2]
    print(f"{'variant':<36} {'ex/s':>7} {'vs base':>8} {'same answer':>12}")
    for name, rate, out in results:
        same = sum(a.strip() == b.strip() for a, b in zip(out, base_out, strict=True)) / len(out)
        print(f"{name:<36} {rate:>7.2f} {rate / base_rate:>7.2f}x {same:>12.3f}")


if __name__ == "__main__":
    main()
