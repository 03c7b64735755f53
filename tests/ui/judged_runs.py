"""Judged and repeated-sampling comparison runs written straight into a real Store, shaped as the
engine stores them (studio/compare/judges.py, scoring.py), so the Compare and Experiments views
are tested on stored rows without running a model. The numbers are chosen by hand:

- pairwise (judge-pairwise vs C1): C2 wins examples 0 and 1 in both orders, flips on 2 (a tie)
  and loses 3 in both orders: W/T/L 2/1/1, win rate 0.625, position consistency 0.75;
- pointwise (judge-pass-fail): verdicts yes, yes, no, no on answers the metric calls right,
  right, wrong, right: agreement 0.75, Cohen's kappa 0.50, mean judge score 0.55;
- sampled (4 samples at temperature 0.7): 4, 2 and 0 right samples: pass@1 0.500, pass@4 0.667,
  consistency 0.75.
"""

from __future__ import annotations

from typing import Any

from studio.store import ComparisonConfigSpec, ComparisonResult, Store

JUDGE = "smollm2-135m-instruct"
PAIRWISE_VERDICTS = [
    ("B", "A"),
    ("B", "A"),
    ("A", "A"),
    ("A", "B"),
]  # (reference-first, this-first)
POINTWISE = [("yes", 0.9, True), ("yes", 0.8, True), ("no", 0.2, False), ("no", 0.3, True)]
SAMPLED = [["a", "a", "a", "a"], ["a", "b", "a", "b"], ["b", "b", "b", "c"]]  # gold: a


def judge_prompt(order: str, index: int) -> str:
    return f"<|im_start|>user\nJudge {order} of example {index}: Answer A ... Answer B ...\n"


def _scores(choices: list[str], verdict: str) -> list[dict[str, Any]]:
    probs = {c: (0.8 if c == verdict else 0.2 / (len(choices) - 1)) for c in choices}
    return [{"choice": c, "logprob": -1.0 - i, "p": probs[c]} for i, c in enumerate(choices)]


def pairwise_judgement(index: int, verdicts: tuple[str, str]) -> dict[str, Any]:
    """What the engine stores for one pair judged in both orders."""
    orders, outcomes = [], []
    for order, verdict in zip(("reference-first", "this-first"), verdicts, strict=True):
        # From this configuration's side: A is ours only when this answer is read first.
        ours = (verdict == "A") == (order == "this-first")
        outcomes.append("win" if ours else "loss")
        orders.append({
            "order": order, "prompt": judge_prompt(order, index), "verdict": verdict,
            "value": 0.8 if verdict == "A" else 0.2, "raw": None,
            "scores": _scores(["A", "B", "tie"], verdict), "preference": 0.8 if ours else 0.2,
        })  # fmt: skip
    consistent = outcomes[0] == outcomes[1]
    return {
        "mode": "pairwise", "model": JUDGE, "template": "judge-pairwise", "orders": orders,
        "consistent": consistent, "outcome": outcomes[0] if consistent else "tie",
        "score": {"win": 0.8, "loss": 0.2}.get(outcomes[0], 0.5) if consistent else 0.5,
    }  # fmt: skip


def _run(store: Store, name: str, n_configs: int, n_examples: int, **settings: Any) -> Any:
    judge = settings.pop("judge_record", None)
    version = store.save_template_version("alpaca-instruction", "template: alpaca", "hash-alpaca")
    data = store.register_dataset(
        "seed_tasks.jsonl", "/d/seed_tasks.jsonl", "jsonl", "b" * 64, n_examples, ["instruction"]
    )
    config = {
        "name": name, "shots": list(range(n_configs)), "seeds": [0], "scoring": "generate",
        "metric": "exact", "reference": 1, "samples": 1, "temperature": 0.0, **settings,
    }  # fmt: skip
    specs = [
        ComparisonConfigSpec(
            model_spec="smollm2-135m-instruct",
            template_version_id=version.id,
            shots=shots,
            seed=0,
            selection="first",
            label=f"smollm2 · alpaca · {shots}-shot",
        )
        for shots in range(n_configs)
    ]
    return store.create_comparison_run(
        name=name, scoring="generate", config=config, dataset_id=data.id, shot_pool_id=None,
        n_examples=n_examples, configs=specs, judge=judge,
    )  # fmt: skip


def _result(config_id: int, index: int, answer: str, right: bool, **extra: Any) -> ComparisonResult:
    extra.setdefault("score", float(right))
    return ComparisonResult(
        config_id=config_id, example_index=index, prompt_text=f"Instruction {index}\nResponse:",
        gold="a", prediction=answer, correct=right, latency_ms=5.0, prompt_tokens=4,
        output=answer, **extra,
    )  # fmt: skip


def judge_record(template: str, mode: str, version_id: int) -> dict[str, Any]:
    return {"model": JUDGE, "template": template, "template_version_id": version_id,
            "version": 1, "mode": mode, "scoring": "loglik"}  # fmt: skip


def pairwise_run(store: Store) -> int:
    """Two configurations; C2's answers judged against C1's (the reference) in both orders."""
    judge = store.save_template_version("judge-pairwise", "template: pairwise", "hash-pairwise")
    record = judge_record("judge-pairwise", "pairwise", judge.id)
    run = _run(
        store, "pairwise judged", 2, 4, judge=JUDGE, judge_template="judge-pairwise",
        judge_mode="pairwise", judge_record=record,
    )  # fmt: skip
    for index, verdicts in enumerate(PAIRWISE_VERDICTS):
        store.add_comparison_result(_result(run.configs[0].id, index, "a", True))
        judged = pairwise_judgement(index, verdicts)
        store.add_comparison_result(_result(run.configs[1].id, index, "b", False, judgement=judged))
    store.finish_comparison_run(run.id, "completed")
    return int(run.id)


def pointwise_run(store: Store) -> int:
    """One configuration, every answer graded yes/no by the judge."""
    judge = store.save_template_version("judge-pass-fail", "template: pass-fail", "hash-pf")
    record = judge_record("judge-pass-fail", "pointwise", judge.id)
    run = _run(
        store, "pointwise judged", 1, 4, judge=JUDGE, judge_template="judge-pass-fail",
        judge_mode="pointwise", judge_record=record,
    )  # fmt: skip
    for index, (verdict, score, right) in enumerate(POINTWISE):
        judged = {
            "mode": "pointwise", "model": JUDGE, "template": "judge-pass-fail",
            "prompt": judge_prompt("pointwise", index), "verdict": verdict, "value": score,
            "raw": None, "scores": _scores(["yes", "no"], verdict), "score": score,
        }  # fmt: skip
        answer = "a" if right else "b"
        store.add_comparison_result(
            _result(run.configs[0].id, index, answer, right, judgement=judged)
        )
    store.finish_comparison_run(run.id, "completed")
    return int(run.id)


def sampled_run(store: Store) -> int:
    """One configuration, 4 samples per example; the stored prediction is the majority."""
    run = _run(store, "sampled", 1, 3, samples=4, temperature=0.7)
    for index, answers in enumerate(SAMPLED):
        samples = [
            {"sample": j, "output": f" {a}", "prediction": a, "correct": a == "a",
             "score": float(a == "a"), "completion_tokens": 2}
            for j, a in enumerate(answers, start=1)
        ]  # fmt: skip
        majority = max(answers, key=answers.count)
        share = sum(s["score"] for s in samples) / len(samples)  # the example's pass@1
        result = _result(run.configs[0].id, index, majority, majority == "a", samples=samples,
                         score=share)  # fmt: skip
        store.add_comparison_result(result)
    store.finish_comparison_run(run.id, "completed")
    return int(run.id)
