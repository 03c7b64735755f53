"""How one data row becomes exact training text: the alpaca, messages and template formats.

This module owns telling the format from the columns, checking each row, and rendering a row
into ordered text segments flagged as answer (trained) or context. The strings are the ones the
rest of the studio uses: a template row renders through build_prompt, exactly as the Compare tab
scores it, and chat text comes from the model's own chat template. Tokens are studio.tuning.data's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import meta

from studio.datasets import Dataset
from studio.templates import PROMPTS_DIR, PromptTemplate, TemplateError, build_prompt, load_template

Segments = tuple[tuple[str, bool], ...]
Renderer = Callable[[dict[str, Any]], Segments]
ALPACA_CHAT = "alpaca-instruction"
ALPACA_COMPLETION = "alpaca-instruction-completion"
MESSAGE_COLUMNS = ("messages", "conversations")
# ShareGPT speakers and the chat roles they are; chat roles map to themselves.
ROLES = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "human": "user",
    "gpt": "assistant",
}
MAX_LISTED = 10


@dataclass(frozen=True)
class DataProblem:
    """One thing wrong with the data; row is the 1-based data row (None: the whole file)."""

    row: int | None
    message: str

    def __str__(self) -> str:
        return self.message if self.row is None else f"row {self.row}: {self.message}"


class TuneDataError(ValueError):
    """Data that cannot be trained on; message lists the problems with row numbers and the fix."""

    def __init__(
        self, problems: Sequence[DataProblem], rows: int | None = None, fix: str | None = None
    ) -> None:
        self.problems = list(problems)
        self.rows, self.fix = rows, fix
        super().__init__(_error_text(self.problems, rows, fix))

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled with its problems (e.g. from a worker process), not with the message text.
        return (type(self), (self.problems, self.rows, self.fix))


def _error_text(problems: list[DataProblem], rows: int | None, fix: str | None) -> str:
    lines = [p.message for p in problems if p.row is None]
    by_row = [p for p in problems if p.row is not None]
    if by_row:
        bad = len({p.row for p in by_row})
        of = f" of {rows}" if rows is not None else ""
        lines.append(f"{bad}{of} rows cannot be trained on:")
        lines += [f"  {p}" for p in by_row[:MAX_LISTED]]
        if len(by_row) > MAX_LISTED:
            lines.append(f"  ... and {len(by_row) - MAX_LISTED} more problems")
    if fix:
        lines.append(f"Fix: {fix}")
    return "\n".join(lines)


class RowProblems(Exception):
    """Raised while rendering one row; carries every problem found in it."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def detect_format(columns: Sequence[str], template: str | None = None) -> str:
    """The training format the columns imply: messages, template (one was chosen) or alpaca."""
    if any(column in columns for column in MESSAGE_COLUMNS):
        return "messages"
    if template:
        return "template"
    if "instruction" in columns and ("output" in columns or "instances" in columns):
        return "alpaca"
    shown = ", ".join(columns) or "(none)"
    raise TuneDataError(
        [
            DataProblem(
                None,
                f"cannot tell the training format from the columns ({shown}): expected a "
                "'messages' or 'conversations' column (chat turns), or 'instruction' and "
                "'output' columns (alpaca). Fix: choose a template (format 'template') and map "
                'its variables to your columns with column_map, e.g. {"sentence": "text"}',
            )
        ]
    )


def check_columns(fmt: str, dataset: Dataset) -> None:
    """The columns a format cannot do without; anything else is checked row by row."""
    columns = ", ".join(dataset.columns)
    if fmt == "alpaca" and not {"instruction", "output"} <= set(dataset.columns):
        message = (
            f"format 'alpaca' needs the columns instruction and output (input is optional); "
            f"{dataset.source} has: {columns}. Fix: rename the columns, map them with "
            'column_map (e.g. {"output": "response"}), or choose another format'
        )
    elif fmt == "messages" and not set(MESSAGE_COLUMNS) & set(dataset.columns):
        message = (
            f"format 'messages' needs a 'messages' or 'conversations' column; {dataset.source} "
            f"has: {columns}. Fix: rename the column, or choose another format"
        )
    else:
        return
    raise TuneDataError([DataProblem(None, message)])


def training_template(
    fmt: str, spec: str | None, tokenizer: Any, library: Path = PROMPTS_DIR
) -> PromptTemplate | None:
    """The studio template rows render through (None for messages, which are chat turns)."""
    chat = bool(getattr(tokenizer, "chat_template", None))
    if fmt == "messages":
        if not chat:
            raise TuneDataError([DataProblem(None, _NO_CHAT_TEMPLATE)])
        return None
    name = spec or (ALPACA_CHAT if chat else ALPACA_COMPLETION)
    if not spec and not (library / f"{name}.yaml").is_file():
        library = PROMPTS_DIR  # a user library without the alpaca formats: use the bundled ones
    try:
        template = load_template(name, library)
    except TemplateError as exc:
        raise TuneDataError([DataProblem(None, str(exc))]) from None
    if template.mode == "chat" and not chat:
        message = (
            f"template '{template.name}' is in chat mode but the model has no chat template "
            "(a base model). Fix: use a completion-mode template"
        )
        raise TuneDataError([DataProblem(None, message)])
    return template


_NO_CHAT_TEMPLATE = (
    "format 'messages' renders conversations with the model's chat template, and this model has "
    "none (a base model). Fix: train it on a completion-mode template instead: format 'alpaca' "
    "(uses alpaca-instruction-completion) or format 'template' with a completion-mode template"
)


def renderer(
    fmt: str, template: PromptTemplate | None, dataset: Dataset, tokenizer: Any
) -> Renderer:
    """The function that turns one row of this data into its segments."""
    if template is None:
        column = next(c for c in MESSAGE_COLUMNS if c in dataset.columns)
        return lambda row: messages_segments(conversation(row[column], column), tokenizer)
    if fmt == "alpaca":
        return lambda row: template_segments(template, alpaca_row(row), tokenizer, "output")
    return lambda row: template_segments(template, row, tokenizer)


def render_rows(
    render: Renderer, dataset: Dataset, numbers: list[int]
) -> tuple[list[tuple[int, Segments]], list[DataProblem]]:
    """(row number, segments) of every good row, and every problem of the others."""
    rendered: list[tuple[int, Segments]] = []
    problems: list[DataProblem] = []
    for number, row in zip(numbers, dataset.rows, strict=True):
        try:
            rendered.append((number, render(row)))
        except RowProblems as bad:
            problems += [DataProblem(number, message) for message in bad.messages]
    return rendered, problems


def collapse(problems: list[DataProblem], rows: int) -> list[DataProblem]:
    """The same problem on every row is one problem of the file (a missing column, say)."""
    messages = {problem.message for problem in problems}
    if len(problems) == rows and len(messages) == 1 and rows > 1:
        return [DataProblem(None, f"every row: {messages.pop()}")]
    return problems


def rows_fix(fmt: str, source: str) -> str:
    """What to do about bad rows, for the end of the error message."""
    where = f"correct or remove these rows in {source}"
    if fmt == "template":
        return f"{where}, or map the template's variables to other columns (column_map)"
    return where


# ---------------------------------------------------------------------------------------------
# Template and alpaca rows


def alpaca_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row checked as alpaca data; a missing input is the empty string, as in Alpaca."""
    problems = [_field_problem(row, name) for name in ("instruction", "output")]
    problems = [problem for problem in problems if problem]
    if problems:
        raise RowProblems(*problems)
    return {**row, "input": "" if row.get("input") is None else row["input"]}


def _field_problem(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None:
        return f"{name} is missing"
    return f"{name} is empty" if not str(value).strip() else ""


def template_segments(
    template: PromptTemplate, row: Mapping[str, Any], tokenizer: Any, answer_name: str = "answer"
) -> Segments:
    """The 0-shot prompt the Compare tab scores, then the answer as the model should write it."""
    missing = [name for name in sorted(_answer_variables(template.answer)) if _is_null(row, name)]
    if missing:
        raise RowProblems(*(f"{name} (used by the answer) is missing" for name in missing))
    try:
        built = build_prompt(template, row, [], tokenizer)
    except TemplateError as exc:
        raise RowProblems(str(exc)) from None
    if not built.answer.strip():
        raise RowProblems(f"{answer_name} is empty")
    if template.mode == "completion":
        # The end-of-text token teaches a base model to stop after the answer.
        eos = getattr(tokenizer, "eos_token", None) or ""
        return ((built.text, False), (template.target_delimiter + built.answer + eos, True))
    assert built.messages is not None  # chat mode always builds the turns
    turns = [*built.messages, {"role": "assistant", "content": built.answer}]
    full = render_chat(tokenizer, turns, generation_prompt=False)
    if not full.startswith(built.text):
        raise RowProblems(
            "the model's chat template renders the conversation with its answer differently "
            "from the prompt alone, so the answer cannot be cut from the prompt. Fix: use a "
            "completion-mode template"
        )
    return ((built.text, False), (full[len(built.text) :], True))


def _is_null(row: Mapping[str, Any], name: str) -> bool:
    return name in row and row[name] is None


@functools.lru_cache(maxsize=64)
def _answer_variables(source: str) -> frozenset[str]:
    # Parsing only (no rendering), so a plain environment is safe here.
    return frozenset(meta.find_undeclared_variables(jinja2.Environment().parse(source)))


# ---------------------------------------------------------------------------------------------
# Messages rows


def conversation(value: Any, column: str) -> list[dict[str, str]]:
    """Chat turns from a messages/conversations cell (a list, or its JSON text in a CSV)."""
    if value is None:
        raise RowProblems(f"{column} is missing")
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            message = f"{column} is not valid JSON ({exc.msg} at column {exc.colno})"
            raise RowProblems(message) from None
    if not isinstance(value, list) or not value:
        raise RowProblems(f"{column} must be a non-empty list of {{role, content}} turns")
    turns, problems = [], []
    for number, item in enumerate(value, start=1):
        try:
            turns.append(_turn(item, number))
        except RowProblems as bad:
            problems += bad.messages
    if turns and not any(turn["role"] == "assistant" for turn in turns):
        problems.append(f"{column} has no assistant turn to learn from")
    if problems:
        raise RowProblems(*problems)
    return turns


def _turn(item: Any, number: int) -> dict[str, str]:
    if not isinstance(item, dict):
        raise RowProblems(f"turn {number} is not an object with role and content")
    speaker = str(item.get("role", item.get("from")) or "")
    content = item.get("content", item.get("value"))
    problems = []
    if not speaker:
        problems.append(f"turn {number} has no role (or ShareGPT 'from')")
    elif speaker not in ROLES:
        problems.append(
            f"turn {number} has role '{speaker}'; use user, assistant or system "
            "(ShareGPT: human, gpt, system)"
        )
    if not isinstance(content, str):
        problems.append(f"turn {number} has no text content")
    elif ROLES.get(speaker) == "assistant" and not content.strip():
        problems.append(f"turn {number} (assistant) is empty")
    if problems:
        raise RowProblems(*problems)
    return {"role": ROLES[speaker], "content": str(content)}


def messages_segments(turns: list[dict[str, str]], tokenizer: Any) -> Segments:
    """Every assistant turn trained on, everything else context, rendered turn by turn."""
    segments: list[tuple[str, bool]] = []
    done = ""
    for i, turn in enumerate(turns):
        if turn["role"] != "assistant":
            continue
        prefix = render_chat(tokenizer, turns[:i], generation_prompt=True)
        full = render_chat(tokenizer, turns[: i + 1], generation_prompt=False)
        if not (prefix.startswith(done) and full.startswith(prefix)):
            raise RowProblems(
                f"the model's chat template rewrites earlier turns when turn {i + 1} is added, "
                "so the answers cannot be marked exactly. Fix: train on one answer per row "
                "(format 'template' with a chat template)"
            )
        segments += [(prefix[len(done) :], False), (full[len(prefix) :], True)]
        done = full
    # Turns after the last answer would only add tokens without loss: they are left out.
    return tuple((text, trained) for text, trained in segments if text)


def render_chat(tokenizer: Any, turns: list[dict[str, str]], generation_prompt: bool) -> str:
    try:
        text = tokenizer.apply_chat_template(
            turns, add_generation_prompt=generation_prompt, tokenize=False
        )
    except (jinja2.TemplateError, ValueError) as exc:  # e.g. a template that refuses a role
        raise RowProblems(f"the model's chat template rejected these turns: {exc}") from None
    return str(text)
