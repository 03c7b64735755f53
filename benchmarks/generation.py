"""Generation speed on one model, prompt and greedy length, all in the same process:

1. baseline: a plain `model.generate` call (no streaming) on the studio's compute thread;
2. studio: `stream_generate` (streamed, stoppable), which also runs on the compute thread;
3. thread per call: the common pattern of starting a new thread for each streamed generate.

    .venv/bin/python benchmarks/generation.py [--model smollm2-135m-instruct] [--quantization 4bit]

Row 3 runs last on purpose: once a second thread has run torch kernels, OpenMP keeps two thread
teams and every later call in the process is slower (see studio/runtime/compute.py).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--quantization", default="none", choices=["none", "8bit", "4bit"])
    parser.add_argument("--tokens", type=int, default=96)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import torch

    from studio.inference.generation import GenerationResult, stream_generate
    from studio.inference.params import SamplingParams
    from studio.models.loading import LoadRequest
    from studio.models.manager import ModelManager
    from studio.playground.prompting import conversation_prompt
    from studio.runtime import compute
    from studio.settings import load_settings

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=Path(home), offline=True)
        loaded = ModelManager(settings).get(LoadRequest(args.model, args.quantization))
    prompt = conversation_prompt(
        loaded.tokenizer, "chat", None, [], "Tell me about the history of Rome."
    )
    inputs = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    n = args.tokens
    # min_new_tokens pins the length so every variant generates exactly n tokens.
    loaded.model.generation_config.min_new_tokens = n

    def generate() -> None:
        with torch.inference_mode():
            out = loaded.model.generate(**inputs, max_new_tokens=n, do_sample=False)
        assert out.shape[1] - inputs["input_ids"].shape[1] == n

    def baseline() -> float:
        started = time.perf_counter()
        compute.run(generate)
        return n / (time.perf_counter() - started)

    def studio() -> float:
        params = SamplingParams(temperature=0, max_new_tokens=n)
        results = [
            r for r in stream_generate(loaded, prompt, params) if isinstance(r, GenerationResult)
        ]
        assert results[0].completion_tokens == n
        return n / results[0].latency_s

    def thread_per_call() -> float:
        started = time.perf_counter()
        worker = threading.Thread(target=generate)
        worker.start()
        worker.join()
        return n / (time.perf_counter() - started)

    baseline()  # warm-up
    rows = [
        (name, statistics.median(fn() for _ in range(args.runs)))
        for name, fn in (
            ("plain generate (baseline)", baseline),
            ("studio stream_generate", studio),
            ("new thread per call", thread_per_call),
        )
    ]
    print(
        f"{args.model} ({args.quantization}), {n} greedy tokens, median of {args.runs}, "
        f"torch threads {torch.get_num_threads()}"
    )
    base = rows[0][1]
    for name, rate in rows:
        print(f"  {name:<28} {rate:6.1f} tokens/s  {rate / base:5.2f}x baseline")


if __name__ == "__main__":
    main()
