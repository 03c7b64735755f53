"""Comparison throughput on SST-2 with 5 fixed shots: the studio's engine against the naive way,
in one run on the same prompts.

- naive (baseline): one `model.generate` per example (greedy, 3 new tokens), the label parsed
  from the text;
- studio generate: the same greedy generation, batched and length-sorted;
- studio loglik, no prefix cache: both choices of several examples per forward pass;
- studio loglik: the same, with the shared 5-shot prefix computed once and its KV cache reused.

    .venv/bin/python benchmarks/compare_throughput.py [--n 200] [--model smollm2-135m-instruct]

Prints examples/s, the ratio to the baseline, accuracy, and how often each method's predicted
label agrees with the baseline's.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SST2 = ROOT.parent / "shared" / "data" / "sst2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--template", default="sst2-sentiment-completion")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--shots", type=int, default=5)
    parser.add_argument("--batch-rows", type=int, default=16)
    args = parser.parse_args()

    import torch

    from studio.compare.metrics import first_choice_in
    from studio.datasets import load_dataset
    from studio.hosting import HostingPolicy
    from studio.inference.batch_generation import generate_batch
    from studio.inference.params import SamplingParams
    from studio.inference.scoring import score_choices
    from studio.models.loading import LoadRequest
    from studio.models.manager import ModelManager
    from studio.runtime import compute
    from studio.settings import load_settings
    from studio.templates import build_prompt, load_template
    from studio.templates.fewshot import ShotSelector

    template = load_template(args.template)
    choices = list(template.choices or [])
    desktop = HostingPolicy.desktop()  # the operator benchmarking their own machine
    evaluation = load_dataset(SST2 / "validation.tsv", policy=desktop).rows[: args.n]
    pool = load_dataset(SST2 / "train.tsv", policy=desktop).rows
    shots = ShotSelector(pool, args.shots).select(evaluation[0])
    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=Path(home), offline=True)
        loaded = ModelManager(settings).get(LoadRequest(args.model))
    built = [build_prompt(template, row, shots, loaded.tokenizer) for row in evaluation]
    prompts = [b.text for b in built]
    gold = [b.answer for b in built]
    special = template.mode == "completion"
    tok = loaded.tokenizer

    def naive() -> list[str]:
        def one(prompt: str) -> str:
            ids = tok(prompt, return_tensors="pt", add_special_tokens=special)
            with torch.inference_mode():
                out = loaded.model.generate(
                    **ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id
                )
            return tok.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)

        return [first_choice_in(compute.run(one, p), choices) or "" for p in prompts]

    def studio_generate() -> list[str]:
        params = SamplingParams(temperature=0, max_new_tokens=3)
        out = {
            g.index: g.text
            for g in generate_batch(
                loaded, prompts, params, batch_size=8, add_special_tokens=special
            )
        }
        return [first_choice_in(out[i], choices) or "" for i in range(len(prompts))]

    def loglik(reuse: bool) -> list[str]:
        conts = [[b.continuation_prefix + c for c in choices] for b in built]
        scored = {
            s.index: s
            for s in score_choices(
                loaded,
                prompts,
                conts,
                reuse_prefix=reuse,
                batch_rows=args.batch_rows,
                add_special_tokens=special,
            )
        }
        return [
            choices[max(range(len(choices)), key=lambda j: scored[i].scores[j].logprob)]
            for i in range(len(prompts))
        ]

    variants = [
        ("naive generate, 1 by 1 (baseline)", naive),
        ("studio generate, batched", studio_generate),
        ("studio loglik, no prefix cache", lambda: loglik(False)),
        ("studio loglik, prefix cache", lambda: loglik(True)),
    ]
    print(
        f"{args.model}, {args.template}, {args.shots} fixed shots, {len(prompts)} SST-2 "
        f"validation examples, torch threads {torch.get_num_threads()}"
    )
    results = []
    for name, fn in variants:
        started = time.perf_counter()
        predictions = fn()
        results.append((name, len(prompts) / (time.perf_counter() - started), predictions))
    base_rate, base_pred = results[0][1], results[0][2]
    print(f"{'variant':<36} {'ex/s':>7} {'vs base':>8} {'accuracy':>9} {'agrees w/ base':>15}")
    for name, rate, pred in results:
        acc = sum(p == g for p, g in zip(pred, gold, strict=True)) / len(gold)
        agree = sum(p == b for p, b in zip(pred, base_pred, strict=True)) / len(gold)
        print(f"{name:<36} {rate:>7.2f} {rate / base_rate:>7.1f}x {acc:>9.3f} {agree:>15.3f}")


if __name__ == "__main__":
    main()
