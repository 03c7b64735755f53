"""Generation speed: the studio's streamed, stoppable generation vs a plain `model.generate` call
on the same model, prompt and greedy settings, in the same run (the ratio is the streaming cost).

    .venv/bin/python benchmarks/generation.py [--model smollm2-135m-instruct] [--tokens 128]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--quantization", default="none", choices=["none", "8bit", "4bit"])
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    import torch

    from studio.inference.generation import GenerationResult, stream_generate
    from studio.inference.params import SamplingParams
    from studio.inference.prompting import build_prompt
    from studio.models.loading import LoadRequest, load_model
    from studio.settings import load_settings

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=Path(home), offline=True)
        loaded = load_model(LoadRequest(args.model, args.quantization), settings)
    prompt = build_prompt(loaded.tokenizer, "chat", None, [], "Tell me about the history of Rome.")
    # min_new_tokens pins the length, so both sides generate exactly the same number of tokens.
    params = SamplingParams(temperature=0, max_new_tokens=args.tokens)
    inputs = loaded.tokenizer(prompt, return_tensors="pt", add_special_tokens=False)

    def plain() -> float:
        started = time.perf_counter()
        with torch.inference_mode():
            out = loaded.model.generate(
                **inputs, max_new_tokens=args.tokens, min_new_tokens=args.tokens, do_sample=False
            )
        assert out.shape[1] - inputs["input_ids"].shape[1] == args.tokens
        return args.tokens / (time.perf_counter() - started)

    def streamed() -> float:
        loaded.model.generation_config.min_new_tokens = args.tokens
        result = [
            r for r in stream_generate(loaded, prompt, params) if isinstance(r, GenerationResult)
        ]
        loaded.model.generation_config.min_new_tokens = None
        assert result[0].completion_tokens == args.tokens
        return args.tokens / result[0].latency_s

    plain()  # warm-up
    base = statistics.median(plain() for _ in range(args.runs))
    ours = statistics.median(streamed() for _ in range(args.runs))
    print(
        f"{args.model} ({args.quantization}), {args.tokens} greedy tokens, "
        f"median of {args.runs}, torch threads {torch.get_num_threads()}"
    )
    print(f"plain model.generate:      {base:6.1f} tokens/s")
    print(f"studio stream_generate:    {ours:6.1f} tokens/s  ({ours / base:.2f}x plain)")


if __name__ == "__main__":
    main()
