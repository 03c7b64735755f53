"""Preference data as the exact strings a preference run trains on: pairs and labelled answers.

Owns the three shapes people have — `prompt`/`chosen`/`rejected` (strings or chat turns),
ShareGPT `conversations` + `chosen` + `rejected` (LLaMA-Factory's, `from`/`value` turns) and
unpaired `prompt`/`completion`/`label` for KTO — telling them apart, checking every row before a
run (problems by row number, as studio.tuning.data does for SFT), and rendering each row once:
the prompt through the model's chat template with the generation prompt, each answer as the
template writes an assistant turn, cut at the end-of-sequence token where generation stops.
Those strings are what the trainers receive (TRL then only tokenizes them) and what the preview
shows; the token ids here are tokenized as DPOTrainer tokenizes them, for the pre-launch checks
and the held-out preference accuracy (studio.tuning.preference).
"""

from __future__ import annotations

import contextlib
import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from studio.datasets import Dataset, load_dataset, map_columns
from studio.hosting import HostingPolicy
from studio.tuning.config import DataSettings
from studio.tuning.data import LengthStats, split_examples
from studio.tuning.formats import (
    ROLES,
    DataProblem,
    RowProblems,
    TuneDataError,
    collapse,
    render_chat,
)

PREFERENCE_FORMATS = ("preference", "sharegpt-preference", "kto")
PAIRED = ("preference", "sharegpt-preference")
Turns = list[dict[str, str]]
TRUE_LABELS = {"true", "1", "yes", "good", "desirable"}
FALSE_LABELS = {"false", "0", "no", "bad", "undesirable"}
PREVIEW_CHARS = 2000


@dataclass(frozen=True)
class PreferenceExample:
    """One row as the trainer sees it: the exact strings and the tokens DPOTrainer makes of them.
    For KTO rows `chosen` is the completion and `label` says whether it is desirable."""

    row: int
    prompt: str
    chosen: str
    rejected: str | None
    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    label: bool | None = None
    truncated: bool = False

    @property
    def n_tokens(self) -> int:
        """Tokens the row costs a step: the prompt once per answer, and the answers."""
        answers = 2 if self.rejected is not None else 1
        return answers * len(self.prompt_ids) + len(self.chosen_ids) + len(self.rejected_ids)

    def record(self) -> dict[str, Any]:
        """The row as the TRL trainers take it (strings: they tokenize, nothing else)."""
        if self.label is not None:
            return {"prompt": self.prompt, "completion": self.chosen, "label": self.label}
        return {"prompt": self.prompt, "chosen": self.chosen, "rejected": self.rejected}


@dataclass(frozen=True)
class PreparedPreference:
    """Everything a preference run trains and evaluates on, checked (the SFT PreparedData's
    counterpart: the launch check, the queue and the worker read the same fields)."""

    format: str
    dataset: Dataset
    train: list[PreferenceExample]
    eval: list[PreferenceExample]
    stats: LengthStats
    warnings: list[DataProblem]
    template: None = None

    def summary(self) -> str:
        stats = self.stats
        kind = "labelled answers" if self.format == "kto" else "pairs"
        lines = [
            f"Format: {self.format} ({kind}, prompts through the model's chat template)",
            f"Data: {self.dataset.source} ({stats.n} rows, hash {self.dataset.content_hash[:12]})",
            f"Split: {len(self.train)} train, {len(self.eval)} held out for preference accuracy",
            f"Tokens per sequence (prompt + longer answer): min {stats.min}, median "
            f"{stats.median:g}, max {stats.max} (max_length {stats.max_length})",
        ]
        if self.warnings:
            lines += ["Warnings:", *(f"  {warning}" for warning in self.warnings)]
        return "\n".join(lines)

    def preview(self, n: int = 1) -> str:
        """The exact training strings of the first n rows: what the loss sees."""
        blocks = []
        for example in (self.train + self.eval)[:n]:
            parts = [f"--- row {example.row} · prompt ({len(example.prompt_ids)} tokens) ---"]
            parts.append(_shown(example.prompt))
            if example.label is not None:
                verdict = "desirable" if example.label else "undesirable"
                parts += [f"--- completion, {verdict} ({len(example.chosen_ids)} tokens) ---"]
                parts.append(_shown(example.chosen))
            else:
                parts += [f"--- chosen ({len(example.chosen_ids)} tokens) ---"]
                parts += [
                    _shown(example.chosen),
                    f"--- rejected ({len(example.rejected_ids)} tokens) ---",
                ]
                parts.append(_shown(example.rejected or ""))
            blocks.append("\n".join(parts))
        return "\n".join(blocks)


def _shown(text: str) -> str:
    return text if len(text) <= PREVIEW_CHARS else text[:PREVIEW_CHARS] + " [...]"


def detect_preference_format(columns: Sequence[str]) -> str | None:
    """The preference shape the columns imply, or None for instruction data."""
    have = set(columns)
    if {"chosen", "rejected"} <= have and "conversations" in have:
        return "sharegpt-preference"
    if {"prompt", "chosen", "rejected"} <= have:
        return "preference"
    if {"prompt", "completion", "label"} <= have:
        return "kto"
    return None


def method_format(method: str, fmt: str, columns: Sequence[str]) -> str:
    """The data format a preference method trains on, refused when they do not fit."""
    if fmt == "auto":
        found = detect_preference_format(columns)
        if found is None:
            raise TuneDataError([DataProblem(None, _no_shape(method, columns))])
        fmt = found
    if fmt not in PREFERENCE_FORMATS:
        message = f"method {method} trains on preference data, not format '{fmt}'"
        raise TuneDataError([DataProblem(None, message)], fix=_SHAPES)
    if (method == "kto") != (fmt == "kto"):
        need = (
            "unpaired prompt/completion/label rows" if method == "kto" else "chosen/rejected pairs"
        )
        message = f"method {method} needs {need}; the data is format '{fmt}'"
        fix = "use --method kto for labelled rows, dpo or orpo for pairs"
        raise TuneDataError([DataProblem(None, message)], fix=fix)
    return fmt


_SHAPES = (
    "give prompt, chosen and rejected columns (strings or chat turns); ShareGPT conversations "
    "with chosen and rejected turns; or prompt, completion and label (true/false) for KTO"
)


def _no_shape(method: str, columns: Sequence[str]) -> str:
    shown = ", ".join(columns) or "(none)"
    return (
        f"method {method} needs preference data, and the columns ({shown}) are none of its "
        f"shapes. Fix: {_SHAPES}; or rename columns with column_map"
    )


# ---------------------------------------------------------------------------------------------
# Rows to turns


def turns_of(value: Any, name: str) -> Turns:
    """Chat turns from a cell: a list of turns, one turn, or JSON text of either."""
    if value is None:
        raise RowProblems(f"{name} is missing")
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        with contextlib.suppress(json.JSONDecodeError):  # plain text starting with a bracket
            value = json.loads(value)
    if isinstance(value, dict):
        value = [value]
    if not isinstance(value, list) or not value:
        raise RowProblems(f"{name} must be text, one {{role, content}} turn or a list of them")
    turns, problems = [], []
    for number, item in enumerate(value, start=1):
        speaker = str(item.get("role", item.get("from")) or "") if isinstance(item, dict) else ""
        content = item.get("content", item.get("value")) if isinstance(item, dict) else None
        if speaker not in ROLES:
            problems.append(
                f"{name} turn {number} has role '{speaker}'; use user, assistant or system "
                "(ShareGPT: human, gpt, system)"
            )
        elif not isinstance(content, str):
            problems.append(f"{name} turn {number} has no text content")
        else:
            turns.append({"role": ROLES[speaker], "content": content})
    if problems:
        raise RowProblems(*problems)
    return turns


def _prompt(value: Any, name: str) -> Turns:
    if isinstance(value, str) and value.lstrip()[:1] not in ("[", "{"):
        turns = [{"role": "user", "content": value}]
    else:
        turns = turns_of(value, name)
    if not "".join(t["content"] for t in turns).strip():
        raise RowProblems(f"{name} is empty")
    if turns[-1]["role"] != "user":
        raise RowProblems(f"{name} must end with a user turn (the answer follows it)")
    return turns


def _answer(value: Any, name: str) -> Turns:
    if isinstance(value, str) and value.lstrip()[:1] not in ("[", "{"):
        turns = [{"role": "assistant", "content": value}]
    else:
        turns = turns_of(value, name)
    if any(turn["role"] != "assistant" for turn in turns):
        raise RowProblems(f"{name} must be the assistant's answer (role assistant or gpt)")
    if not "".join(turn["content"] for turn in turns).strip():
        raise RowProblems(f"{name} is empty")
    return turns


def _label(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower() if value is not None else ""
    if text in TRUE_LABELS:
        return True
    if text in FALSE_LABELS:
        return False
    raise RowProblems(f"label must be true or false, not {value!r}")


def row_turns(fmt: str, row: dict[str, Any]) -> tuple[Turns, Turns, Turns | None, bool | None]:
    """(prompt, chosen or completion, rejected, label) of one row, every problem raised."""
    problems: list[str] = []
    parts: list[Any] = []
    prompt_name = "conversations" if fmt == "sharegpt-preference" else "prompt"
    names = ("chosen", "rejected") if fmt in PAIRED else ("completion",)
    for name, parse in ((prompt_name, _prompt), *((n, _answer) for n in names)):
        try:
            parts.append(parse(row.get(name), name))
        except RowProblems as bad:
            problems += bad.messages
    label = None
    if fmt == "kto":
        try:
            label = _label(row.get("label"))
        except RowProblems as bad:
            problems += bad.messages
    if problems:
        raise RowProblems(*problems)
    rejected = parts[2] if fmt in PAIRED else None
    return parts[0], parts[1], rejected, label


# ---------------------------------------------------------------------------------------------
# Turns to the exact strings, strings to tokens


def render_strings(tokenizer: Any, prompt: Turns, answer: Turns) -> tuple[str, str]:
    """(prompt text, answer text): the chat template's prompt with its generation prompt, and
    the answer as the template writes it after that prompt, ending at the EOS token."""
    eos = getattr(tokenizer, "eos_token", None) or ""
    if not getattr(tokenizer, "chat_template", None):
        if len(prompt) > 1 or len(answer) > 1:
            raise RowProblems("multi-turn rows need a chat template, and this model has none")
        return prompt[0]["content"], answer[0]["content"] + eos
    head = render_chat(tokenizer, prompt, generation_prompt=True)
    full = render_chat(tokenizer, prompt + answer, generation_prompt=False)
    if not full.startswith(head):
        raise RowProblems(
            "the model's chat template renders the prompt differently once the answer follows, "
            "so the answer cannot be cut from it exactly"
        )
    text = full[len(head) :]
    # Generation stops at EOS: what a template writes after it (a newline) is never generated,
    # and TRL appends EOS to an answer that does not end with it.
    end = text.rfind(eos) if eos else -1
    return head, (text[: end + len(eos)] if end >= 0 else text + eos)


def dpo_token_ids(tokenizer: Any, prompt: str, answers: Sequence[str]) -> tuple[list[int], ...]:
    """(prompt ids, *answer ids) exactly as DPOTrainer tokenizes string rows: the prompt and
    each prompt + answer tokenized whole, the answers starting where all of them diverge."""
    prompt_ids = list(tokenizer(text=prompt)["input_ids"])
    whole = [list(tokenizer(text=prompt + answer)["input_ids"]) for answer in answers]
    start = min(_common_prefix(prompt_ids, ids) for ids in whole)
    return (prompt_ids[:start], *(ids[start:] for ids in whole))


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def render_row(fmt: str, row: dict[str, Any], number: int, tokenizer: Any) -> PreferenceExample:
    prompt, chosen, rejected, label = row_turns(fmt, row)
    prompt_text, chosen_text = render_strings(tokenizer, prompt, chosen)
    rejected_text = render_strings(tokenizer, prompt, rejected)[1] if rejected else None
    answers = [chosen_text] + ([rejected_text] if rejected_text is not None else [])
    ids = dpo_token_ids(tokenizer, prompt_text, answers)
    return PreferenceExample(
        row=number,
        prompt=prompt_text,
        chosen=chosen_text,
        rejected=rejected_text,
        prompt_ids=ids[0],
        chosen_ids=ids[1],
        rejected_ids=ids[2] if len(ids) > 2 else [],
        label=label,
    )


# ---------------------------------------------------------------------------------------------
# The whole file


def prepare_preference_data(
    settings: DataSettings, method: str, tokenizer: Any, policy: HostingPolicy, seed: int = 0
) -> PreparedPreference:
    """Read, check, render, tokenize and split preference data; TuneDataError lists every
    problem by row before anything runs."""
    dataset = load_dataset(settings.path, policy=policy)
    if settings.column_map:
        dataset = map_columns(dataset, settings.column_map)
    if settings.limit is not None:
        dataset = replace(dataset, rows=dataset.rows[: settings.limit])
    fmt = method_format(method, settings.format, dataset.columns)
    examples, problems = [], []
    for number, row in enumerate(dataset.rows, start=1):
        try:
            example = render_row(fmt, row, number, tokenizer)
        except RowProblems as bad:
            problems += [DataProblem(number, message) for message in bad.messages]
            continue
        if len(example.prompt_ids) >= settings.max_length:
            problems.append(_filled(number, len(example.prompt_ids), settings.max_length))
            continue
        examples.append(_truncation(example, settings.max_length))
    if problems:
        fix = f"correct or remove these rows in {dataset.source}"
        if any("filling max_length" in problem.message for problem in problems):
            fix += "; for prompts that fill max_length, raise max_length or shorten them"
        raise TuneDataError(collapse(problems, len(dataset)), len(dataset), fix)
    train, held = split_preference(examples, settings.eval_split, seed)
    if not train:
        raise TuneDataError([DataProblem(None, "no rows are left to train on")], fix="add rows")
    stats = _stats(examples, settings.max_length)
    return PreparedPreference(fmt, dataset, train, held, stats, _warnings(examples, held, fmt))


def _filled(number: int, tokens: int, max_length: int) -> DataProblem:
    return DataProblem(
        number,
        f"the prompt alone is {tokens} tokens, filling max_length {max_length}: no answer "
        "token would be compared (the trainer would drop the row)",
    )


def _truncation(example: PreferenceExample, max_length: int) -> PreferenceExample:
    longest = len(example.prompt_ids) + max(len(example.chosen_ids), len(example.rejected_ids))
    return replace(example, truncated=longest > max_length)


def split_preference(
    examples: list[PreferenceExample], eval_split: float, seed: int
) -> tuple[list[PreferenceExample], list[PreferenceExample]]:
    """(train, held out) by a seeded shuffle, as studio.tuning.data splits SFT rows."""
    return split_examples(examples, eval_split, seed)


def _stats(examples: list[PreferenceExample], max_length: int) -> LengthStats:
    lengths = [len(e.prompt_ids) + max(len(e.chosen_ids), len(e.rejected_ids)) for e in examples]
    return LengthStats(
        n=len(lengths),
        min=min(lengths, default=0),
        median=float(statistics.median(lengths)) if lengths else 0.0,
        max=max(lengths, default=0),
        max_length=max_length,
        truncated_rows=[e.row for e in examples if e.truncated],
    )


def _warnings(
    examples: list[PreferenceExample], held: list[PreferenceExample], fmt: str
) -> list[DataProblem]:
    warnings = []
    cut = [e.row for e in examples if e.truncated]
    if cut:
        shown = ", ".join(map(str, cut[:10])) + (", ..." if len(cut) > 10 else "")
        warnings.append(
            DataProblem(
                None,
                f"{len(cut)} row(s) are longer than max_length and their answers are cut at the "
                f"right, so their ends are not compared (rows {shown}). Fix: raise max_length",
            )
        )
    if not held:
        what = "preference accuracy" if fmt != "kto" else "held-out rewards"
        warnings.append(DataProblem(None, f"no held-out rows: no {what} before and after"))
    return warnings
