"""The two Self-Instruct prompts, and reading the model's answers to them.

Instruction generation (Wang et al. 2022, `bootstrap_instructions.py`): eight tasks in context,
two of them generated ones when there are (the rest seed tasks), shuffled and numbered under
"Come up with a series of tasks:"; the prompt ends with "9." and the model writes task 9 and
maybe more ("10. ..."). Instance generation, input first: a few seed tasks with one example
each ("Task / Input / Output", `<noinput>` for tasks without input), then the new task and
"Input:". In chat mode the same text is the user's message, with one line asking for the
continuation, and the answers are read the same way.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from studio.data.seed_tasks import SeedTask
from studio.data.synthetic_filters import clean_instruction

NO_INPUT = "<noinput>"
INSTRUCTION_HEADER = "Come up with a series of tasks:\n"
INSTANCE_HEADER = (
    "Come up with an example for each task: its input (or <noinput> when the task needs none) "
    "and its output.\n\n"
)
INSTRUCTION_STOP = ("\n\n", "\n16", "16.", "16 .")  # the original's stop sequences
CHAT_INSTRUCTION_STOP = ("\n16", "16.", "16 .")  # a chat answer may open with a blank line
INSTANCE_STOP = ("\nTask:", "\nInput:")
INSTANCE_EXAMPLES = 3
MAX_EXAMPLE_CHARS = 500  # seed examples longer than this make the prompt long, not better
_NUMBERED = re.compile(r"(?:^|\n)\s*\d+\s?\.\s*")


@dataclass(frozen=True)
class ContextTask:
    """A task shown in a prompt: a seed task or a generated instruction, by id."""

    id: str
    instruction: str


@dataclass(frozen=True)
class ParsedInstruction:
    text: str
    truncated: bool  # the last item of an answer that hit max_new_tokens


def instruction_prompt(tasks: Sequence[ContextTask], chat: bool) -> str:
    """The numbered list of in-context tasks, ending where the model continues."""
    lines = [f"{i}. {clean_instruction(t.instruction).rstrip(':')}" for i, t in enumerate(tasks, 1)]
    text = INSTRUCTION_HEADER + "\n".join(lines) + "\n"
    if chat:
        return (
            text + f"\nContinue the list with new, different tasks, numbered from {len(tasks) + 1}."
        )
    return text + f"{len(tasks) + 1}."


def choose_context(
    rng: random.Random,
    seeds: Sequence[SeedTask],
    generated: Sequence[ContextTask],
    size: int,
    from_generated: int,
) -> list[ContextTask]:
    """`from_generated` generated tasks when there are that many, seed tasks for the rest,
    shuffled: Self-Instruct's 6 + 2 for a size of 8."""
    chosen = rng.sample(list(generated), min(from_generated, len(generated)))
    rest = min(size - len(chosen), len(seeds))
    chosen += [ContextTask(s.id, s.instruction) for s in rng.sample(list(seeds), rest)]
    rng.shuffle(chosen)
    return chosen


def parse_instructions(
    answer: str, first_number: int, hit_limit: bool, chat: bool = False
) -> list[ParsedInstruction]:
    """The instructions in a numbered continuation ("9. A...\\n10. B..."), cleaned, in order.
    A completion starts after the prompt's "9."; a chat answer's words before its first
    numbered line ("Sure, here are more:") are not a task."""
    first = re.search(r"(?:^|\n)\s*\d+\s?\.", answer)
    if chat and first is not None:
        answer = answer[first.start() :]
    text = answer if re.match(r"\s*\d+\s?\.", answer) else f"{first_number}. {answer.lstrip()}"
    parts = [p for p in _NUMBERED.split(text) if p.strip()]
    return [
        ParsedInstruction(clean_instruction(p), hit_limit and i == len(parts) - 1)
        for i, p in enumerate(parts)
    ]


def instance_examples(rng: random.Random, seeds: Sequence[SeedTask]) -> list[SeedTask]:
    """Seed tasks shown as worked examples: short ones, chosen at random."""
    short = [s for s in seeds if len(s.instruction + s.input + s.output) <= MAX_EXAMPLE_CHARS]
    pool = short if len(short) >= INSTANCE_EXAMPLES else list(seeds)
    return rng.sample(pool, min(INSTANCE_EXAMPLES, len(pool)))


def instance_prompt(examples: Sequence[SeedTask], instruction: str, chat: bool) -> str:
    """Worked examples, then the new task; the model writes its input and output."""
    blocks = [
        f"Task: {s.instruction}\nInput: {s.input.strip() or NO_INPUT}\nOutput: {s.output.strip()}"
        for s in examples
    ]
    text = INSTANCE_HEADER + "\n\n".join(blocks) + f"\n\nTask: {instruction}\n"
    if chat:
        return text + "Write this task's Input and Output in the same format."
    return text + "Input:"


def parse_instance(answer: str) -> tuple[str, str] | None:
    """(input, output) from "<input>\\nOutput: <output>"; None when there is no "Output:"."""
    text = re.sub(r"^\s*Input:", "", answer.strip())
    if "Output:" not in text:
        return None
    input_text, _, output = text.partition("Output:")
    output = re.split(r"\n\s*(?:Task|Input|Output):", output)[0]  # a second example begun
    input_text = input_text.strip()
    if input_text.lower() in (NO_INPUT, "", "none", "n/a"):
        input_text = ""
    return input_text, output.strip()
