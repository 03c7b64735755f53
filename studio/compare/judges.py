"""Judges: a model grades the answers of a generation run, through a judge template.

A judge template is an ordinary library template whose prompt reads the example's columns plus
what the judge needs: `output` (pointwise: one answer), `output_a` and `output_b` (pairwise: two
answers), and optionally `reference` (the gold answer, for reference-guided grading). Its
`choices` are the verdicts:

- pointwise: a numeric scale (e.g. "1".."5", scored (v - min) / (max - min)) or a pass/fail pair
  (yes/no, pass/fail, correct/incorrect, good/bad, true/false: 1 and 0);
- pairwise: exactly "A", "B" and "tie" (any case, any order).

A local judge is scored by the log-likelihood of each verdict after the judge prompt (one forward
pass per prompt, no parsing; the expected score under those probabilities is kept beside the
argmax verdict). A served judge generates greedily and its first verdict word is taken. A pairwise
judge sees every pair in both orders; a verdict that flips with the order is a tie, and the share
of pairs judged the same both ways is the judge's position consistency.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from studio.compare.config import CompareConfigError
from studio.compare.metrics import first_choice_in
from studio.inference.backends import InferenceBackend
from studio.inference.params import SamplingParams
from studio.store.records import ComparisonResult
from studio.templates import BuiltPrompt, PromptTemplate, build_prompt
from studio.templates.preview import JUDGE_STAND_INS

JUDGE_INPUTS = frozenset(JUDGE_STAND_INS)  # output, output_a, output_b, reference
PASS_FAIL = {
    "pass": 1.0, "fail": 0.0, "yes": 1.0, "no": 0.0, "correct": 1.0, "incorrect": 0.0,
    "good": 1.0, "bad": 0.0, "true": 1.0, "false": 0.0,
}  # fmt: skip
PAIRWISE = {"a": 1.0, "b": 0.0, "tie": 0.5}  # preference for answer A
ORDERS = ("reference-first", "this-first")  # pairwise: which answer the judge reads as A


@dataclass(frozen=True)
class Rubric:
    """How a judge template's verdicts become numbers (see the module docstring)."""

    mode: str  # pointwise | pairwise
    choices: tuple[str, ...]
    values: tuple[float, ...]


@dataclass(frozen=True)
class Judge:
    """A judge ready to grade: its template, rubric, model spec and how it is scored."""

    model: str
    template: PromptTemplate
    rubric: Rubric
    scoring: str  # loglik (local judges) | generate (served judges)

    @property
    def mode(self) -> str:
        return self.rubric.mode


@dataclass(frozen=True)
class JudgeJob:
    """One answer to grade: its stored result and the judge prompts (two orders if pairwise)."""

    result: ComparisonResult
    prompts: tuple[BuiltPrompt, ...]


def rubric_of(template: PromptTemplate, mode: str) -> Rubric:
    """The verdict scale of a judge template, or CompareConfigError naming the fix."""
    choices = tuple(template.choices or ())
    where = f"judge template '{template.name}'"
    keys = [c.strip().lower() for c in choices]
    if mode == "pairwise":
        if sorted(keys) != ["a", "b", "tie"]:
            raise CompareConfigError(
                f"{where}: a pairwise judge's choices must be A, B and tie; got {list(choices)}. "
                "Fix: set choices: [A, B, tie]"
            )
        return Rubric(mode, choices, tuple(PAIRWISE[k] for k in keys))
    numbers = _numbers(keys)
    if numbers is not None and len(set(numbers)) > 1:
        low, high = min(numbers), max(numbers)
        return Rubric(mode, choices, tuple((v - low) / (high - low) for v in numbers))
    if (
        len(keys) == 2
        and all(k in PASS_FAIL for k in keys)
        and len({PASS_FAIL[k] for k in keys}) == 2
    ):
        return Rubric(mode, choices, tuple(PASS_FAIL[k] for k in keys))
    raise CompareConfigError(
        f"{where}: a pointwise judge's choices must be a numeric scale (e.g. 1, 2, 3, 4, 5) or a "
        f"pass/fail pair (yes/no, pass/fail, correct/incorrect, good/bad); got {list(choices)}. "
        "Fix: change its choices"
    )


def _numbers(keys: Sequence[str]) -> list[float] | None:
    try:
        return [float(k) for k in keys]
    except ValueError:
        return None


def check_judge_template(template: PromptTemplate, mode: str, columns: Sequence[str]) -> Rubric:
    """A judge template fits the mode and the data: it reads the answer(s) it grades and no
    column the data lacks. Raises CompareConfigError before anything is stored."""
    where = f"judge template '{template.name}'"
    variables = template.variables()
    needed = {"output"} if mode == "pointwise" else {"output_a", "output_b"}
    other = {"output_a", "output_b"} if mode == "pointwise" else {"output"}
    if not needed <= variables or variables & other:
        raise CompareConfigError(
            f"{where} does not fit a {mode} judge: it reads {sorted(variables & JUDGE_INPUTS)}, "
            f"a {mode} judge's prompt reads {sorted(needed)}. Fix: pick a {mode} judge template "
            "(e.g. judge-pairwise or judge-pass-fail) or change --judge-mode"
        )
    unknown = sorted(variables - JUDGE_INPUTS - set(columns))
    if unknown:
        raise CompareConfigError(
            f"{where} reads {unknown}, which the data does not have (columns: {list(columns)}; "
            f"judge inputs: {sorted(JUDGE_INPUTS)}). Fix: map the columns with column_map or "
            "edit the template"
        )
    return rubric_of(template, mode)


def answer_of(result: ComparisonResult) -> str:
    """The text a judge grades: the generated answer (sample 1 of a sampled run)."""
    return (result.output if result.output is not None else result.prediction or "").strip()


def judge_jobs(
    judge: Judge,
    rows: Sequence[Mapping[str, Any]],
    results: Sequence[ComparisonResult],
    references: Mapping[int, ComparisonResult],
    tokenizer: Any,
) -> list[JudgeJob]:
    """The judge prompts of every result (pairwise: against the reference's result on the same
    example, in both orders; a result whose reference has no answer yet is left out)."""
    jobs = []
    for result in results:
        row = {**rows[result.example_index], "reference": result.gold}
        if judge.mode == "pointwise":
            contexts = [{**row, "output": answer_of(result)}]
        else:
            other = references.get(result.example_index)
            if other is None:
                continue
            this, ref = answer_of(result), answer_of(other)
            contexts = [
                {**row, "output_a": ref, "output_b": this},
                {**row, "output_a": this, "output_b": ref},
            ]
        prompts = tuple(build_prompt(judge.template, c, [], tokenizer) for c in contexts)
        jobs.append(JudgeJob(result, prompts))
    return jobs


def grade(
    judge: Judge,
    backend: InferenceBackend,
    jobs: Sequence[JudgeJob],
    batch_rows: int,
    stop: threading.Event,
) -> Iterator[tuple[JudgeJob, dict[str, Any]]]:
    """Each job with its judgement, chunk by chunk: all prompts of a chunk go to the judge in
    one batched call; a stop ends after the chunk in flight."""
    width = max(1, batch_rows // len(ORDERS)) if judge.mode == "pairwise" else max(1, batch_rows)
    for start in range(0, len(jobs), width):
        if stop.is_set():
            return
        chunk = jobs[start : start + width]
        prompts = [p for job in chunk for p in job.prompts]
        verdicts = _verdicts(judge, backend, prompts, batch_rows, stop)
        if len(verdicts) < len(prompts):
            return  # stopped midway: the chunk is judged again on resume
        at = 0
        for job in chunk:
            parts = [verdicts[at + i] for i in range(len(job.prompts))]
            at += len(job.prompts)
            yield job, _judgement(judge, job, parts)


def _verdicts(
    judge: Judge,
    backend: InferenceBackend,
    prompts: Sequence[BuiltPrompt],
    batch_rows: int,
    stop: threading.Event,
) -> dict[int, dict[str, Any]]:
    """Per prompt index: the verdict, its score under the rubric and what the judge said."""
    choices = judge.rubric.choices
    texts = [p.text for p in prompts]
    out: dict[int, dict[str, Any]] = {}
    if judge.scoring == "loglik":
        continuations = [[p.continuation_prefix + c for c in choices] for p in prompts]
        mode = judge.template.mode
        for example in backend.score(texts, continuations, mode, batch_rows=batch_rows, stop=stop):
            logprobs = [max(s.logprob, -1e30) for s in example.scores]
            out[example.index] = _from_logprobs(judge.rubric, logprobs)
        return out
    params = SamplingParams(temperature=0.0, max_new_tokens=16, seed=0, top_k=0, top_p=1.0)
    mode = judge.template.mode
    for gen in backend.generate(texts, mode, params, batch_size=max(1, batch_rows), stop=stop):
        verdict = first_choice_in(gen.text, choices)
        value = None if verdict is None else judge.rubric.values[choices.index(verdict)]
        out[gen.index] = {"verdict": verdict, "value": value, "raw": gen.text, "scores": None}
    return out


def _from_logprobs(rubric: Rubric, logprobs: list[float]) -> dict[str, Any]:
    top = max(logprobs)
    weights = [math.exp(lp - top) for lp in logprobs]
    total = sum(weights)
    probs = [w / total for w in weights]
    best = max(range(len(probs)), key=lambda i: probs[i])
    return {
        "verdict": rubric.choices[best],
        "value": sum(p * v for p, v in zip(probs, rubric.values, strict=True)),
        "raw": None,
        "scores": [
            {"choice": c, "logprob": lp, "p": p}
            for c, lp, p in zip(rubric.choices, logprobs, probs, strict=True)
        ],
    }


def _judgement(judge: Judge, job: JudgeJob, parts: list[dict[str, Any]]) -> dict[str, Any]:
    """What is stored on the result: the exact prompts, the judge's scores or raw text, and the
    verdict (pairwise: per order from this answer's side, then win/tie/loss)."""
    base = {"mode": judge.mode, "model": judge.model, "template": judge.template.name}
    if judge.mode == "pointwise":
        part = parts[0]
        return {**base, "prompt": job.prompts[0].text, **part, "score": part["value"]}
    orders, outcomes, prefs = [], [], []
    for order, prompt, part in zip(ORDERS, job.prompts, parts, strict=True):
        value = part["value"]  # preference for answer A
        pref = None if value is None else (value if order == "this-first" else 1.0 - value)
        verdict_value = _verdict_value(judge.rubric, part["verdict"])
        if verdict_value is not None and order == "reference-first":
            verdict_value = 1.0 - verdict_value
        outcomes.append(_outcome(verdict_value))
        prefs.append(pref)
        orders.append({"order": order, "prompt": prompt.text, **part, "preference": pref})
    consistent = outcomes[0] is not None and outcomes[0] == outcomes[1]
    known = [p for p in prefs if p is not None]
    return {
        **base,
        "orders": orders,
        "consistent": consistent,
        "outcome": outcomes[0] if consistent else "tie",
        "score": sum(known) / len(known) if known else None,
    }


def _verdict_value(rubric: Rubric, verdict: str | None) -> float | None:
    return None if verdict is None else rubric.values[rubric.choices.index(verdict)]


def _outcome(preference: float | None) -> str | None:
    if preference is None:
        return None
    return "win" if preference > 0.5 else "loss" if preference < 0.5 else "tie"
