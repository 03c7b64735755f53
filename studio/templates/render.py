"""A dataset row through a template: the rendered fields, the few-shot block and the exact
prompt text a model sees (through the tokenizer's chat template in chat mode)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jinja2

from studio.rendering import (
    TemplateError,
    variables_of,
)
from studio.templates.schema import PromptTemplate, render_field


@dataclass(frozen=True)
class RenderedExample:
    """One row through a template: the prompt, the verbalized gold answer, the system text."""

    prompt: str
    answer: str
    system: str | None


@dataclass(frozen=True)
class BuiltPrompt:
    """A full few-shot prompt, exactly as the model sees it, and what the answer must follow."""

    text: str
    messages: list[dict[str, str]] | None
    answer: str
    continuation_prefix: str


def _answer_context(template: PromptTemplate, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with label_map applied to every value the answer reads (raw str(v) -> word)."""
    context = dict(row)
    if template.label_map is None:
        return context
    for name in sorted(variables_of(template.answer) & row.keys()):
        raw = str(row[name])
        if raw not in template.label_map:
            known = ", ".join(repr(k) for k in template.label_map)
            raise TemplateError(
                f"template '{template.name}': label value {raw!r} (column '{name}') has no entry "
                f"in label_map (keys: {known}). Fix: add it to label_map or drop those rows."
            )
        context[name] = template.label_map[raw]
    return context


def _prompt_and_answer(template: PromptTemplate, row: Mapping[str, Any]) -> tuple[str, str]:
    prompt = render_field(template, "template", row)
    return prompt, render_field(template, "answer", _answer_context(template, row))


def render_fields(template: PromptTemplate, row: Mapping[str, Any]) -> RenderedExample:
    """Render one row: prompt from the raw row, answer from label-mapped values, system if any."""
    prompt, answer = _prompt_and_answer(template, row)
    system = None if template.system is None else render_field(template, "system", row)
    return RenderedExample(prompt=prompt, answer=answer, system=system)


def fewshot_block(template: PromptTemplate, shots: Sequence[Mapping[str, Any]]) -> str:
    """The shots alone as text (UI preview): prompt, delimiter, answer; shot_separator between."""
    pairs = (_prompt_and_answer(template, shot) for shot in shots)
    return template.shot_separator.join(p + template.target_delimiter + a for p, a in pairs)


def build_prompt(
    template: PromptTemplate,
    query_row: Mapping[str, Any],
    shots: Sequence[Mapping[str, Any]],
    tokenizer: Any | None = None,
) -> BuiltPrompt:
    """The exact text for a k-shot query: the chat template over turns, or joined text blocks."""
    if template.mode == "chat":
        _require_chat_template(template, tokenizer)
    query = render_fields(template, query_row)
    if template.mode == "completion":
        blocks = [query.system] if query.system else []
        blocks += [fewshot_block(template, shots)] if shots else []
        text = template.shot_separator.join([*blocks, query.prompt])
        return BuiltPrompt(text, None, query.answer, template.target_delimiter)
    messages = [{"role": "system", "content": query.system}] if query.system else []
    for shot in shots:
        prompt, answer = _prompt_and_answer(template, shot)
        messages += [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": query.prompt})
    return BuiltPrompt(
        _apply_chat_template(template, tokenizer, messages), messages, query.answer, ""
    )


def _require_chat_template(template: PromptTemplate, tokenizer: Any | None) -> None:
    if tokenizer is None:
        raise TemplateError(
            f"template '{template.name}' is in chat mode, which needs the model's tokenizer for "
            "its chat template. Fix: pass the tokenizer, or use mode: completion"
        )
    if not getattr(tokenizer, "chat_template", None):
        raise TemplateError(
            f"template '{template.name}' is in chat mode but model has no chat template "
            "(a base model); use mode: completion"
        )


def _apply_chat_template(
    template: PromptTemplate, tokenizer: Any, messages: list[dict[str, str]]
) -> str:
    try:
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    except jinja2.TemplateError as exc:  # e.g. a chat template that refuses a system turn
        raise TemplateError(
            f"template '{template.name}': the model's chat template rejected the messages: {exc}. "
            "Fix: remove the system key, or use mode: completion"
        ) from exc
    return str(text)
