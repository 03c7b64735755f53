"""Prompts tab, preview side: a template on one data row, exactly as a model would see it.

No gradio here, so it is unit-tested directly. Data files are cached by path, size and mtime, so
the live preview (which reruns on every edit) does not re-read the file each time.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from studio.datasets import Dataset, DatasetError, load_dataset
from studio.hosting import HostingPolicy
from studio.settings import SHIPPED_ROOT
from studio.templates import PromptTemplate, build_prompt, fewshot_block
from studio.templates.fewshot import ShotSelector

DEFAULT_DATA = "studio/samples/reviews.csv"
MAX_SHOTS = 8
# "first" takes the first k rows that differ from the previewed one; a bounded pool keeps a large
# file cheap to preview and only matters when hundreds of rows duplicate the previewed row.
_POOL_LIMIT = 200
# What a judge template reads besides the data (studio/compare/judges.py): shown in a preview
# when the row lacks it, so a judge template previews on any data file.
JUDGE_STAND_INS = {
    "output": "(the answer being graded)",
    "output_a": "(answer A)",
    "output_b": "(answer B)",
    "reference": "(the gold answer)",
}


@dataclass(frozen=True)
class Preview:
    """What the tab shows: the exact text, the shots alone, the gold answer, and the row used."""

    text: str
    fewshot: str
    answer: str
    row: dict[str, Any]
    rows: int
    mode: str


def resolve_data_path(text: str | None) -> Path:
    """A data path from the textbox: as given, or relative to the project (where app.py is)."""
    value = (text or "").strip()
    if not value:
        raise DatasetError("(no data file)", "no data file chosen", "type a path or upload a file")
    path = Path(value).expanduser()
    if path.is_absolute() or path.exists():
        return path
    return SHIPPED_ROOT / path


class DatasetCache:
    """The last few data files read, keyed by path, size and mtime (a changed file is re-read)."""

    def __init__(self, size: int = 4) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, int, int], Dataset] = OrderedDict()
        self._lock = threading.Lock()

    def load(self, path: Path, policy: HostingPolicy) -> Dataset:
        policy.check_data_path(path)  # before the file is looked at, so nothing leaks
        try:
            stat = path.stat()
        except OSError:
            return load_dataset(path, policy=policy)  # raises the error that names the problem
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        dataset = load_dataset(path, policy=policy)
        with self._lock:
            self._items[key] = dataset
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return dataset


def pick_rows(dataset: Dataset, index: int, k: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The previewed row and its k shots: the first k other rows of the same file."""
    count = len(dataset.rows)
    if not 0 <= index < count:
        raise IndexError(
            f"row {index} is not in {dataset.source}: it has {count} rows (0-{count - 1}). "
            "Fix: choose a row index in that range"
        )
    if not 0 <= k <= MAX_SHOTS:
        raise ValueError(f"shots k={k} must be between 0 and {MAX_SHOTS}")
    row = dict(dataset.rows[index])
    others = [*dataset.rows[:index], *dataset.rows[index + 1 :]][:_POOL_LIMIT]
    if k > len(others):
        raise ValueError(
            f"k={k} shots requested but {dataset.source} has only {len(others)} other rows; lower k"
        )
    return row, ShotSelector(others, k, "first").select(row)


def build_preview(
    template: PromptTemplate, dataset: Dataset, index: int, k: int, tokenizer: Any | None
) -> Preview:
    """Render row `index` with k shots; raises TemplateError / ValueError with the fix."""
    row, shots = pick_rows(dataset, index, k)
    for name in sorted(template.variables() & JUDGE_STAND_INS.keys() - row.keys()):
        row[name] = JUDGE_STAND_INS[name]
    built = build_prompt(template, row, shots, tokenizer)
    block = fewshot_block(template, shots) if shots else ""
    return Preview(built.text, block, built.answer, row, len(dataset.rows), template.mode)


class TurnsTokenizer:
    """Stands in for a model's tokenizer before one is loaded: chat turns as readable text.

    The live preview must not load a model on every keystroke; this shows the same messages
    build_prompt would pass to the real chat template, one labelled block per turn.
    """

    chat_template = "(turns)"

    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in messages)


def count_tokens(tokenizer: Any, text: str, mode: str) -> int:
    """Tokens the model reads, counted as the comparison engine encodes the prompt.

    Completion prompts get the tokenizer's special tokens (e.g. BOS); a chat template already
    wrote its own into the text.
    """
    encoded = tokenizer(text, add_special_tokens=mode == "completion")
    return len(encoded["input_ids"])


def row_summary(preview: Preview, index: int, k: int, source: str) -> str:
    shots = f"{k} shot{'s' if k != 1 else ''} (the first other rows)" if k else "no shots"
    return f"row {index} of {preview.rows} in `{source}` · {shots} · mode: {preview.mode}"
