"""Instruction data as exact, masked training sequences: what a tuning run trains on.

This module owns preparing the data of a run: reading the file (Self-Instruct seed tasks are
flattened), choosing the format, tokenizing every row the way studio.inference.scoring tokenizes
a prompt and its answer (so training and evaluation see identical tokens), masking everything
but the answers, truncating to max_length, the seeded train/eval split, and finding every
problem before a run starts. How one row becomes text lives in studio.tuning.formats.
"""

from __future__ import annotations

import json
import random
import statistics
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from studio.datasets import (
    Dataset,
    flatten_self_instruct,
    is_self_instruct,
    load_dataset,
    map_columns,
)
from studio.hosting import HostingPolicy
from studio.inference.scoring import encode
from studio.templates import PromptTemplate
from studio.tuning.config import DataSettings
from studio.tuning.formats import (
    DataProblem,
    Segments,
    TuneDataError,
    check_columns,
    collapse,
    detect_format,
    render_rows,
    renderer,
    rows_fix,
    training_template,
)

__all__ = [
    "DataProblem",
    "LengthStats",
    "PreparedData",
    "TrainExample",
    "TuneDataError",
    "detect_format",
    "eval_count",
    "packed_rows",
    "prepare_data",
    "split_examples",
    "tokenize_segments",
]

SMALL_EVAL = 10  # fewer eval rows than this make the eval loss too noisy to compare runs
LISTED = 10  # truncated rows named one by one in the warnings and the summary


@dataclass(frozen=True)
class TrainExample:
    """One row as the model trains on it: exact text pieces, tokens and the loss mask."""

    row: int
    segments: tuple[tuple[str, bool], ...]
    input_ids: list[int]
    completion_mask: list[int]
    truncated: bool

    @property
    def n_tokens(self) -> int:
        return len(self.input_ids)

    @property
    def completion_tokens(self) -> int:
        """Tokens the loss applies to."""
        return sum(self.completion_mask)

    @property
    def prompt_tokens(self) -> int:
        """Tokens without loss (the masked prompt)."""
        return self.n_tokens - self.completion_tokens

    @property
    def text(self) -> str:
        return "".join(piece for piece, _ in self.segments)


@dataclass(frozen=True)
class LengthStats:
    """Token lengths of all rows before truncation, and the rows longer than max_length."""

    n: int
    min: int
    median: float
    max: int
    max_length: int
    truncated_rows: list[int]


@dataclass(frozen=True)
class PreparedData:
    """Everything a run trains and evaluates on, checked, with what the user should know."""

    format: str
    dataset: Dataset
    template: PromptTemplate | None
    train: list[TrainExample]
    eval: list[TrainExample]
    stats: LengthStats
    warnings: list[DataProblem]

    def summary(self) -> str:
        stats, template = self.stats, self.template
        used = f" through template '{template.name}' ({template.mode} mode)" if template else ""
        lines = [
            f"Format: {self.format}{used}",
            f"Data: {self.dataset.source} ({stats.n} rows, hash {self.dataset.content_hash[:12]})",
            f"Split: {len(self.train)} train, {len(self.eval)} eval",
            f"Tokens per row: min {stats.min}, median {stats.median:g}, max {stats.max} "
            f"(max_length {stats.max_length})",
        ]
        if stats.truncated_rows:
            shown = ", ".join(map(str, stats.truncated_rows[:LISTED]))
            more = ", ..." if len(stats.truncated_rows) > LISTED else ""
            lines.append(f"Truncated: {len(stats.truncated_rows)} rows ({shown}{more})")
        if self.warnings:
            lines += ["Warnings:", *(f"  {warning}" for warning in self.warnings)]
        return "\n".join(lines)


def prepare_data(
    settings: DataSettings,
    tokenizer: Any,
    policy: HostingPolicy,
    seed: int = 0,
) -> PreparedData:
    """Read, check, render, tokenize and split the data; TuneDataError lists every problem.
    The hosting policy decides which data files may be read, and holds the template library
    that template names are looked up in."""
    dataset, numbers = _load(settings, policy)
    fmt: str = settings.format
    if fmt == "auto":
        fmt = detect_format(dataset.columns, settings.template)
    check_columns(fmt, dataset)
    template = training_template(fmt, settings.template, tokenizer, policy.library)
    render = renderer(fmt, template, dataset, tokenizer)
    rendered, problems = render_rows(render, dataset, numbers)
    # Completion-mode prompts get the tokenizer's BOS like scoring gives them; chat text has it.
    add_special = template is not None and template.mode == "completion"
    examples, lengths, cut = _tokenize_rows(rendered, tokenizer, add_special, settings)
    if problems or cut:
        raise _data_error(problems, cut, fmt, dataset, settings.max_length)
    train, evaluation = split_examples(examples, settings.eval_split, seed)
    if not train:
        raise TuneDataError([DataProblem(None, "no rows are left to train on")], fix="add rows")
    stats = _stats(examples, lengths, settings.max_length)
    warnings = _format_warnings(fmt, settings) + _truncation_warnings(examples, lengths, settings)
    warnings += _split_warnings(len(examples), len(evaluation), settings.eval_split)
    return PreparedData(fmt, dataset, template, train, evaluation, stats, warnings)


# ---------------------------------------------------------------------------------------------
# Loading and the format


def _load(settings: DataSettings, policy: HostingPolicy) -> tuple[Dataset, list[int]]:
    """The rows to train on (column_map applied, limit kept) and their row numbers in the file."""
    dataset = load_dataset(settings.path, policy=policy)
    self_instruct = settings.format != "messages" and is_self_instruct(dataset)
    if self_instruct:
        dataset = flatten_self_instruct(settings.path, policy=policy)
    if settings.column_map:
        # Imported here: the compare package pulls in the store, which data checks do not need.
        dataset = map_columns(dataset, settings.column_map)
    numbers = _row_numbers(dataset, self_instruct)
    if settings.limit is not None:
        # Like Compare's limit: the hash stays the file's, the config records the limit.
        dataset = replace(dataset, rows=dataset.rows[: settings.limit])
        numbers = numbers[: settings.limit]
    return dataset, numbers


def _row_numbers(dataset: Dataset, self_instruct: bool) -> list[int]:
    """Row numbers as the user finds them: the line in a JSONL file, else the data row."""
    plain = list(range(1, len(dataset) + 1))
    if dataset.format != "jsonl" or dataset.path is None:
        return plain
    try:
        text = Path(dataset.path).read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return plain
    lines = [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]
    # A Self-Instruct task becomes one row per instance, all on the task's line.
    numbers = [n for n, line in lines for _ in range(_instances(line) if self_instruct else 1)]
    return numbers if len(numbers) == len(dataset) else plain  # the file changed meanwhile


def _instances(line: str) -> int:
    try:
        return len(json.loads(line).get("instances") or [])
    except (ValueError, AttributeError, TypeError):
        return 0


# ---------------------------------------------------------------------------------------------
# Rows to text, text to tokens


def tokenize_segments(
    tokenizer: Any, segments: Segments, add_special_tokens: bool
) -> tuple[list[int], list[bool]]:
    """Token ids of the joined segments, each piece a continuation of the text before it."""
    text, first = segments[0]
    ids = list(tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"])
    answer = [first] * len(ids)
    for piece, trained in segments[1:]:
        # scoring.encode: the continuation's tokens as they appear after the prompt.
        new = encode(tokenizer, text, ids, piece, add_special_tokens)
        ids += new
        answer += [trained] * len(new)
        text += piece
    return ids, answer


def _tokenize_rows(
    rendered: list[tuple[int, Segments]], tokenizer: Any, add_special: bool, settings: DataSettings
) -> tuple[list[TrainExample], list[int], list[tuple[int, int]]]:
    """Examples and their untruncated lengths; (row, prompt tokens) where no answer would fit."""
    examples: list[TrainExample] = []
    lengths: list[int] = []
    cut: list[tuple[int, int]] = []
    for number, segments in rendered:
        ids, answer = tokenize_segments(tokenizer, segments, add_special)
        start = answer.index(True) if True in answer else len(ids)
        if start >= settings.max_length:
            cut.append((number, start))
            continue
        examples.append(_example(number, segments, ids, answer, settings))
        lengths.append(len(ids))
    return examples, lengths, cut


def _data_error(
    problems: list[DataProblem],
    cut: list[tuple[int, int]],
    fmt: str,
    dataset: Dataset,
    max_length: int,
) -> TuneDataError:
    """Every problem, in row order, with the fix that fits them."""
    problems = problems + [
        DataProblem(
            row,
            f"the prompt alone is {start} tokens, filling max_length {max_length}: "
            "none of the answer would be learned",
        )
        for row, start in cut
    ]
    fix = rows_fix(fmt, dataset.source)
    if cut:
        longest = max(start for _, start in cut)
        fix += f"; for prompts that fill max_length, raise it above {longest} or shorten them"
    ordered = sorted(problems, key=lambda problem: problem.row or 0)
    return TuneDataError(collapse(ordered, len(dataset)), len(dataset), fix)


def _example(
    number: int, segments: Segments, ids: list[int], answer: list[bool], settings: DataSettings
) -> TrainExample:
    whole = not settings.completion_only_loss  # every token is trained on
    mask = [1 if trained or whole else 0 for trained in answer]
    limit = settings.max_length
    return TrainExample(
        row=number,
        segments=tuple((piece, trained or whole) for piece, trained in segments),
        input_ids=ids[:limit],
        completion_mask=mask[:limit],
        truncated=len(ids) > limit,
    )


def packed_rows(examples: list[TrainExample], max_length: int, n: int) -> list[list[TrainExample]]:
    """The first n sequences packing makes of `examples`: the rows in each, in order.

    Packed by TRL's own `pack_dataset` (best-fit decreasing, as SFTTrainer packs with packing
    on), with a column that carries each token's row, so the preview is the run's real packing.
    """
    # lazy: datasets and trl are slow to import; only a packed run's preview needs them
    from datasets import Dataset
    from trl import pack_dataset

    columns = {
        "input_ids": [e.input_ids for e in examples],
        "index": [[i] * e.n_tokens for i, e in enumerate(examples)],
    }
    packed = pack_dataset(Dataset.from_dict(columns), max_length, "bfd")
    sequences = []
    for row in packed.select(range(min(n, len(packed)))):
        starts = [sum(row["seq_lengths"][:k]) for k in range(len(row["seq_lengths"]))]
        sequences.append([examples[row["index"][start]] for start in starts])
    return sequences


# ---------------------------------------------------------------------------------------------
# Split, statistics, warnings


Row = TypeVar("Row")


def eval_count(n: int, eval_split: float) -> int:
    """Rows held out: round(n * eval_split), at least 1 when asked for, always 1 left to train."""
    if eval_split <= 0 or n < 2:
        return 0
    return min(max(round(n * eval_split), 1), n - 1)


def split_examples(
    examples: list[Row], eval_split: float, seed: int
) -> tuple[list[Row], list[Row]]:
    """(train, eval) by a seeded shuffle; both keep the file's order (SFT and preference rows)."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    held = set(order[: eval_count(len(examples), eval_split)])
    train = [e for i, e in enumerate(examples) if i not in held]
    return train, [e for i, e in enumerate(examples) if i in held]


def _stats(examples: list[TrainExample], lengths: list[int], max_length: int) -> LengthStats:
    return LengthStats(
        n=len(lengths),
        min=min(lengths, default=0),
        median=float(statistics.median(lengths)) if lengths else 0.0,
        max=max(lengths, default=0),
        max_length=max_length,
        truncated_rows=[example.row for example in examples if example.truncated],
    )


def _format_warnings(fmt: str, settings: DataSettings) -> list[DataProblem]:
    if fmt == "messages" and settings.template:
        message = (
            f"template '{settings.template}' is not used: the data has chat turns, trained as "
            "format 'messages'. Set format 'template' to render rows through the template"
        )
        return [DataProblem(None, message)]
    return []


def _truncation_warnings(
    examples: list[TrainExample], lengths: list[int], settings: DataSettings
) -> list[DataProblem]:
    limit = settings.max_length
    long = [(e.row, n) for e, n in zip(examples, lengths, strict=True) if e.truncated]
    if not long:
        return []
    message = (
        f"{len(long)} row(s) are longer than max_length {limit} and are cut at the right, so "
        f"their ends are not learned. Fix: raise max_length (the longest row is "
        f"{max(n for _, n in long)} tokens)"
    )
    listed = [DataProblem(row, f"{n} tokens, cut to {limit}") for row, n in long[:LISTED]]
    return [DataProblem(None, message), *listed]


def _split_warnings(n: int, n_eval: int, eval_split: float) -> list[DataProblem]:
    if eval_split > 0 and n_eval == 0:
        return [DataProblem(None, f"no eval rows: {n} row(s) cannot be split; no eval loss")]
    if 0 < n_eval < SMALL_EVAL:
        message = (
            f"the eval split has only {n_eval} row(s), so its loss is noisy. Fix: raise "
            "eval_split or add rows"
        )
        return [DataProblem(None, message)]
    return []
