"""The checks a generated instruction and its instance pass before they become a training row.

As in Self-Instruct (Wang et al. 2022) and Stanford Alpaca, which filtered the same way:

- an instruction of 3 words or fewer, or over 150, is dropped (`too-short`, `too-long`);
- one naming something a language model cannot do or see (image, graph, picture, file, map,
  draw, plot, go to, video, audio, music, flowchart, diagram) is dropped (`keyword:<word>`);
- one starting with "Write a program" (the models over-produce it), with punctuation or with a
  non-ASCII character (mostly non-English) is dropped;
- one whose ROUGE-L F-measure to any instruction in the pool (the seed tasks and the generated
  instructions kept so far) is above the threshold (0.7 in the paper) is a near-duplicate.
  Scores come from Google's `rouge-score` without stemming, as both projects computed them.

An instance is dropped when its output is empty, equals its input or repeats the instruction,
or when the same input and output were already kept for another instruction.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from typing import Any

DEFAULT_ROUGE_THRESHOLD = 0.7
MIN_WORDS = 4  # "len(inst.split()) <= 3" is dropped in the original
MAX_WORDS = 150
BLOCKED_WORDS = (
    "image", "images", "graph", "graphs", "picture", "pictures", "file", "files", "map", "maps",
    "draw", "plot", "go to", "video", "audio", "music", "flowchart", "diagram",
)  # fmt: skip
_BLOCKED = re.compile(
    r"\b(" + "|".join(re.escape(word) for word in BLOCKED_WORDS) + r")\b", re.IGNORECASE
)


def clean_instruction(text: str) -> str:
    """Whitespace runs collapsed, ends stripped, first letter upper-cased (the original's
    `capitalize` also lower-cased the rest, which changes names; this does not)."""
    text = re.sub(r"\s+", " ", text).strip()
    return text[:1].upper() + text[1:]


def instruction_problem(text: str) -> str | None:
    """Why a cleaned instruction is dropped by the heuristics, as a reason code; None if kept."""
    if not text:
        return "empty"
    words = len(text.split())
    if words < MIN_WORDS:
        return "too-short"
    if words > MAX_WORDS:
        return "too-long"
    blocked = _BLOCKED.search(text)
    if blocked:
        return f"keyword:{blocked.group(1).lower()}"
    if text.lower().startswith("write a program"):
        return "write-a-program"
    if text[0] in string.punctuation:
        return "starts-with-punctuation"
    if not text[0].isascii():
        return "starts-non-english"
    return None


def instance_problem(instruction: str, input_text: str, output: str) -> str | None:
    """Why a parsed instance is dropped, as a reason code; None if kept."""
    if not output.strip():
        return "empty-output"
    if output.strip() == input_text.strip():
        return "output-equals-input"
    if output.strip().lower() == instruction.strip().lower():
        return "output-repeats-instruction"
    return None


@dataclass(frozen=True)
class Similarity:
    """The highest ROUGE-L F-measure of a text to the pool, and the pool entry that gave it."""

    score: float
    most_similar: str | None
    most_similar_id: str | None


class RougePool:
    """Instructions a new one must not repeat, with their ids (seed task ids, candidate ids)."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.ids: list[str] = []

    def add(self, item_id: str, text: str) -> None:
        self.texts.append(text)
        self.ids.append(item_id)

    def nearest(self, text: str) -> Similarity:
        """The pool's closest instruction to `text` by ROUGE-L F-measure (first one on ties)."""
        best, where = 0.0, None
        scorer = _scorer()
        for i, other in enumerate(self.texts):
            score = float(scorer.score(other, text)["rougeL"].fmeasure)
            if where is None or score > best:
                best, where = score, i
        if where is None:
            return Similarity(0.0, None, None)
        return Similarity(best, self.texts[where], self.ids[where])


@functools.lru_cache(maxsize=1)
def _scorer() -> Any:
    # lazy: rouge-score pulls in nltk; only generation needs it
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)


def instruction_verdict(
    pool: RougePool, text: str, threshold: float, truncated: bool = False
) -> tuple[str | None, Similarity]:
    """Why a proposed instruction is rejected (None: kept), and its nearest pool entry. A cut-off
    instruction is `truncated`; heuristics come next; then a ROUGE-L strictly above
    `threshold` is a `near-duplicate` (the paper keeps a score of exactly 0.7)."""
    near = pool.nearest(text)
    reason = "truncated" if truncated else instruction_problem(text)
    if reason is None and near.score > threshold:
        reason = "near-duplicate"
    return reason, near
