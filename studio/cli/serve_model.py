"""`studio serve-model SPEC`: serve a model (an adapter, an export, any model spec) on an
OpenAI-compatible endpoint with an existing engine, until stopped; it prints the spec that
evaluates the endpoint in the studio (see studio/export/serving.py)."""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any


def add_serve_model_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve-model",
        help="serve a model or adapter on an OpenAI-compatible endpoint (transformers, "
        "llama.cpp or vLLM)",
        description="Serve a model spec (adapters/NAME, a .gguf export, a folder, a bundled "
        "model) with an existing engine until Ctrl-C; prints the openai: spec to evaluate it.",
    )
    p.add_argument("spec", metavar="SPEC")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument(
        "--engine",
        choices=["llama-cpp", "transformers", "vllm"],
        help="default: llama-cpp for a GGUF when installed, vLLM on a CUDA GPU that has it, "
        "else transformers",
    )
    p.add_argument("--dry-run", action="store_true", help="print the server command, start nothing")
    p.set_defaults(func=run_serve_model)


def run_serve_model(args: argparse.Namespace) -> int:
    # lazy: model resolution and merging (torch) stay out of `studio --help`
    from studio.export.serving import plan_serving, start, wait_ready
    from studio.settings import get_settings

    settings = get_settings()

    def progress(message: str) -> None:
        print(message, file=sys.stderr)

    plan = plan_serving(args.spec, settings, args.engine, args.host, args.port, progress=progress)
    print(" ".join(plan.command), file=sys.stderr)
    if args.dry_run:
        print(plan.spec)
        return 0
    log = settings.home / "serving" / f"serve-{args.port}.log"
    process = start(plan, log)
    try:
        wait_ready(plan, process, log)
        print(f"serving {args.spec} with {plan.engine} at {plan.base_url}/v1 (log: {log})")
        print(plan.spec, flush=True)
        return process.wait()
    except KeyboardInterrupt:
        return 130
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:  # a server that ignores SIGTERM is killed
                process.kill()
