"""Score one grid cell: build every example's exact prompt, then score by log-likelihood or by
generating, producing one stored result per example."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import Environment, meta

from studio.compare.metrics import (
    GRADED_METRICS,
    PASS_MARK,
    calibration_prior,
    contains,
    exact_match,
    first_choice_in,
    majority_answer,
    regex_match,
)
from studio.compare.prepare import GridCell, Prepared
from studio.inference.backends import InferenceBackend
from studio.inference.params import SamplingParams
from studio.rendering import variables_of
from studio.store.records import ComparisonResult
from studio.templates import BuiltPrompt, TemplateError, build_prompt
from studio.templates.fewshot import ShotSelector

# Content-free inputs of contextual calibration (Zhao et al., 2021).
CONTENT_FREE = ("N/A", "", "[MASK]")


@dataclass(frozen=True)
class _Item:
    index: int
    built: BuiltPrompt


def build_cell_prompts(prepared: Prepared, cell: GridCell, tokenizer: Any) -> list[_Item]:
    """The exact prompt of every evaluation example for this cell (shots chosen per the config)."""
    selector = _selector(prepared, cell)
    items = []
    for index, row in enumerate(prepared.evaluation.rows):
        shots = selector.select(row) if selector else []
        items.append(_Item(index, build_prompt(cell.template, row, shots, tokenizer)))
    return items


def _selector(prepared: Prepared, cell: GridCell) -> ShotSelector | None:
    if cell.shots == 0 or prepared.pool is None:
        return None
    return ShotSelector(
        prepared.pool.rows,
        cell.shots,
        strategy=prepared.config.selection,
        seed=cell.seed,
        label_column=prepared.config.label_column or _label_column(cell),
    )


def content_free_calibration(
    prepared: Prepared, cell: GridCell, backend: InferenceBackend, stop: threading.Event
) -> dict[str, Any] | None:
    """The cell's label prior for contextual calibration: each content-free input (N/A, the
    empty string, [MASK]) in place of every variable the prompt reads, with the cell's shots,
    scored over the choices like any example. None if stopped before all were scored."""
    template = cell.template
    choices = list(template.choices or [])
    base = prepared.evaluation.rows[0]
    inputs = sorted(variables_of(template.template) - variables_of(template.answer))
    selector = _selector(prepared, cell)
    built = []
    for text in CONTENT_FREE:
        row = {**base, **{name: text for name in inputs}}
        shots = selector.select(row) if selector else []
        built.append(build_prompt(template, row, shots, backend.prompt_format))
    scored = backend.score(
        [b.text for b in built],
        [[b.continuation_prefix + c for c in choices] for b in built],
        template.mode,
        batch_rows=prepared.config.batch_rows,
        stop=stop,
    )
    by_index = {example.index: [s.logprob for s in example.scores] for example in scored}
    if len(by_index) < len(built):
        return None
    logprobs = [[max(lp, -1e30) for lp in by_index[i]] for i in range(len(built))]
    return {
        "inputs": list(CONTENT_FREE),
        "prompts": [b.text for b in built],
        "logprobs": logprobs,
        "prior": calibration_prior(logprobs),
    }


def _label_column(cell: GridCell) -> str | None:
    # The answer's single variable is the natural label for balanced selection.

    # Parsing only (nothing is rendered), so a plain environment is safe here.
    names = meta.find_undeclared_variables(Environment().parse(cell.template.answer))
    return next(iter(names)) if len(names) == 1 else None


def score_cell(
    prepared: Prepared,
    cell: GridCell,
    config_id: int,
    backend: InferenceBackend,
    stop: threading.Event,
    skip: set[int] | frozenset[int] = frozenset(),
) -> Iterator[ComparisonResult]:
    """Results for every example of the cell except those in skip (already stored)."""
    items = build_cell_prompts(prepared, cell, backend.prompt_format)
    items = [item for item in items if item.index not in skip]
    if prepared.config.scoring == "loglik":
        yield from _loglik(prepared, cell, config_id, backend, items, stop)
    else:
        yield from _generate(prepared, cell, config_id, backend, items, stop)


def _loglik(prepared, cell, config_id, backend, items, stop) -> Iterator[ComparisonResult]:
    choices = list(cell.template.choices or [])
    for item in items:
        if item.built.answer not in choices:
            raise TemplateError(
                f"template '{cell.template.name}': gold answer '{item.built.answer}' of example "
                f"{item.index} is not one of its choices {choices}. Fix: add a label_map entry "
                "or extend choices."
            )
    continuations = [[item.built.continuation_prefix + c for c in choices] for item in items]
    scored = backend.score(
        [item.built.text for item in items],
        continuations,
        cell.template.mode,
        batch_rows=prepared.config.batch_rows,
        stop=stop,
    )
    for example in scored:
        item = items[example.index]
        logprobs = [s.logprob for s in example.scores]
        best = max(range(len(choices)), key=lambda j: logprobs[j])
        # acc_norm as lm-evaluation-harness computes it: log-likelihood per character of the choice.
        best_norm = max(range(len(choices)), key=lambda j: logprobs[j] / max(len(choices[j]), 1))
        gold = item.built.answer
        yield ComparisonResult(
            config_id=config_id,
            example_index=item.index,
            prompt_text=item.built.text,
            gold=gold,
            prediction=choices[best],
            correct=choices[best] == gold,
            correct_norm=choices[best_norm] == gold,
            choice_scores=[
                # -inf (a choice the model deems impossible) is not storable JSON; clamp it.
                {"choice": c, "logprob": max(s.logprob, -1e30), "length": s.length}
                for c, s in zip(choices, example.scores, strict=True)
            ],
            latency_ms=example.latency_s * 1000,
            prompt_tokens=example.prompt_tokens,
        )


def _generate(prepared, cell, config_id, backend, items, stop) -> Iterator[ComparisonResult]:
    config = prepared.config
    if config.samples > 1:
        yield from _sampled(prepared, cell, config_id, backend, items, stop)
        return
    generated = backend.generate(
        [item.built.text for item in items],
        cell.template.mode,
        _params(config, cell),
        batch_size=max(1, config.batch_rows // 2),
        stop=stop,
    )
    for out in generated:
        item = items[out.index]
        gold = item.built.answer
        prediction, correct, score = _verdict(config, cell, out.text, gold)
        yield ComparisonResult(
            config_id=config_id,
            example_index=item.index,
            prompt_text=item.built.text,
            gold=gold,
            prediction=prediction,
            correct=correct,
            output=out.text,
            score=score,
            latency_ms=out.latency_s * 1000,
            prompt_tokens=out.prompt_tokens,
            completion_tokens=out.completion_tokens,
        )


def _params(config: Any, cell: GridCell) -> SamplingParams:
    # Answers are one line in completion mode; chat answers end at the end of the turn anyway.
    stops = ("\n",) if cell.template.mode == "completion" else ()
    return SamplingParams(
        temperature=config.temperature,
        max_new_tokens=config.max_new_tokens,
        seed=cell.seed,
        stop=stops,
        top_k=0,
        top_p=1.0,
    )


def _verdict(config: Any, cell: GridCell, text: str, gold: str) -> tuple[str, bool, float]:
    """An answer's prediction (mapped onto a choice if the template has choices) and score."""
    prediction = text.strip()
    if cell.template.choices:
        prediction = first_choice_in(prediction, cell.template.choices) or prediction
    correct, score = _judge(config.metric, config.regex, prediction, gold)
    return prediction, correct, score


def _sampled(prepared, cell, config_id, backend, items, stop) -> Iterator[ComparisonResult]:
    """Repeated sampling: `samples` answers per example, generated together chunk by chunk (the
    chunk's prompts repeated), one stored row per example with every sample. The row's
    prediction is the majority answer (self-consistency), `correct` its verdict, and `score` the
    mean sample score (for right/wrong metrics, the example's pass@1)."""
    config = prepared.config
    n, width = config.samples, max(1, config.batch_rows // 2)
    for start in range(0, len(items), width):
        chunk = items[start : start + width]
        prompts = [item.built.text for item in chunk for _ in range(n)]
        outs = {}
        for out in backend.generate(
            prompts, cell.template.mode, _params(config, cell), batch_size=width, stop=stop
        ):
            outs[out.index] = out
        if len(outs) < len(prompts):
            return  # stopped: the chunk is sampled again on resume
        for k, item in enumerate(chunk):
            yield _sampled_row(config, cell, config_id, item, [outs[k * n + j] for j in range(n)])


def _sampled_row(config, cell, config_id, item, outs) -> ComparisonResult:
    gold = item.built.answer
    samples = []
    for j, out in enumerate(outs, start=1):
        prediction, correct, score = _verdict(config, cell, out.text, gold)
        samples.append(
            {"sample": j, "output": out.text, "prediction": prediction, "correct": correct,
             "score": score, "completion_tokens": out.completion_tokens}
        )  # fmt: skip
    majority = majority_answer([s["prediction"] for s in samples])
    _, correct, _ = _verdict(config, cell, majority, gold)
    tokens = [o.completion_tokens for o in outs]
    return ComparisonResult(
        config_id=config_id,
        example_index=item.index,
        prompt_text=item.built.text,
        gold=gold,
        prediction=majority,
        correct=correct,
        output=outs[0].text,
        score=sum(s["score"] for s in samples) / len(samples),
        latency_ms=sum(o.latency_s for o in outs) * 1000,
        prompt_tokens=outs[0].prompt_tokens,
        completion_tokens=None if None in tokens else sum(tokens),
        samples=samples,
    )


def _judge(metric: str, pattern: str | None, prediction: str, gold: str) -> tuple[bool, float]:
    if metric == "exact":
        ok = exact_match(prediction, gold)
        return ok, float(ok)
    if metric == "contains":
        ok = contains(prediction, gold)
        return ok, float(ok)
    if metric == "regex":
        ok = regex_match(prediction, pattern or "")
        return ok, float(ok)
    score = GRADED_METRICS[metric](prediction, gold)
    return score >= PASS_MARK, score
