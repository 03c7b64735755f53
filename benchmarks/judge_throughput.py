"""Judge throughput: judged examples per second for a pairwise judge (both orders), the studio's
batched grading against a naive loop that makes one model call per judgement, in the same run.

    .venv/bin/python benchmarks/judge_throughput.py [--examples 24] [--batch-rows 16]

Both variants grade the same answers (two answers per Self-Instruct seed instance, from the
data's own outputs and a shortened copy, so no generation time is mixed in) with the bundled
model and the library's judge-pairwise template, through the same backend and the same
log-likelihood scoring of the verdicts A, B and tie:

1. naive: for every pair and order, one `backend.score` call with one prompt;
2. studio: `studio.compare.judges.grade`, which sends every prompt of a chunk (both orders of
   several pairs) in one call; the scorer batches them and reuses the shared prompt prefix.

The verdicts of both variants are compared: they must agree (batching changes speed, not
answers), up to float noise in near-ties.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

SEED_TASKS = Path(__file__).resolve().parents[2] / "shared/data/self-instruct/seed_tasks.jsonl"


def _pairs(n: int) -> list[tuple[dict, str, str]]:
    rows = []
    for line in SEED_TASKS.read_text(encoding="utf-8").splitlines():
        task = json.loads(line)
        for inst in task["instances"]:
            row = {"instruction": task["instruction"], "input": inst["input"]}
            full = inst["output"]
            short = " ".join(full.split()[: max(3, len(full.split()) // 3)])
            rows.append((row, full, short))
            if len(rows) == n:
                return rows
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--examples", type=int, default=24)
    parser.add_argument("--batch-rows", type=int, default=16)
    args = parser.parse_args()

    from studio.compare.judges import Judge, grade, judge_jobs, rubric_of
    from studio.hosting import HostingPolicy
    from studio.inference.registry import ModelBackends
    from studio.models.manager import ModelManager
    from studio.settings import PROMPTS_DIR, load_settings
    from studio.store.records import ComparisonResult
    from studio.templates import load_template

    with tempfile.TemporaryDirectory() as home:
        settings = load_settings(home=Path(home), offline=True)
        backends = ModelBackends(ModelManager(settings), HostingPolicy.desktop())
        backend = backends.open(args.model)
    template = load_template("judge-pairwise", PROMPTS_DIR)
    judge = Judge(args.model, template, rubric_of(template, "pairwise"), "loglik")
    pairs = _pairs(args.examples)
    rows = [row for row, _, _ in pairs]

    def result(i: int, config: int, text: str) -> ComparisonResult:
        return ComparisonResult(
            config_id=config, example_index=i, prompt_text="", gold="", prediction=text,
            correct=False, latency_ms=0.0, prompt_tokens=None, output=text, id=i,
        )  # fmt: skip

    this = [result(i, 2, short) for i, (_, _, short) in enumerate(pairs)]
    refs = {i: result(i, 1, full) for i, (_, full, _) in enumerate(pairs)}
    jobs = judge_jobs(judge, rows, this, refs, backend.prompt_format)
    stop = threading.Event()
    list(grade(judge, backend, jobs[:2], args.batch_rows, stop))  # warm-up

    started = time.perf_counter()
    naive = []
    for job in jobs:
        for prompt in job.prompts:
            (scored,) = backend.score([prompt.text], [["A", "B", "tie"]], "chat", batch_rows=1)
            logprobs = [s.logprob for s in scored.scores]
            naive.append(judge.rubric.choices[logprobs.index(max(logprobs))])
    naive_s = time.perf_counter() - started

    started = time.perf_counter()
    graded = list(grade(judge, backend, jobs, args.batch_rows, stop))
    studio_s = time.perf_counter() - started
    batched = [o["verdict"] for _, j in graded for o in j["orders"]]

    n = len(jobs)
    same = sum(a == b for a, b in zip(naive, batched, strict=True)) / len(naive)
    print(f"{n} pairs, each judged in both orders ({2 * n} judge prompts), {args.model}")
    print(f"naive, one call per judgement: {n / naive_s:6.2f} judged examples/s")
    print(f"studio, batched grade():       {n / studio_s:6.2f} judged examples/s")
    print(f"speed-up {naive_s / studio_s:.2f}x; verdicts identical for {same:.1%} of prompts")


if __name__ == "__main__":
    main()
