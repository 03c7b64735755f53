"""Rendering cost of the bounded sandbox: every shipped template in prompts/ over the sample rows
in studio/samples/, through render_fields (the path comparisons take thousands of times), against
the same renderings in a plain ImmutableSandboxedEnvironment in the same run (the old-style
renderer: no budget, no hooks), which is the baseline. Both sides check their outputs match.

    .venv/bin/python benchmarks/template_render.py [--rounds 5] [--repeats 5]
"""

from __future__ import annotations

import argparse
import csv
import functools
import itertools
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jinja2
from jinja2 import StrictUndefined
from jinja2.sandbox import ImmutableSandboxedEnvironment

from studio.templates import (
    PROMPTS_DIR,
    PromptTemplate,
    RenderedExample,
    _answer_context,
    load_template,
    render_fields,
)

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "studio" / "samples").glob("*.csv"))
PLAIN = ImmutableSandboxedEnvironment(
    undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False
)


@functools.lru_cache(maxsize=512)
def _plain_compiled(source: str) -> jinja2.Template:
    return PLAIN.from_string(source)


def _plain_render(source: str, context: Mapping[str, Any]) -> str:
    return _plain_compiled(source).render(context).rstrip("\n")


def plain_render_fields(template: PromptTemplate, row: Mapping[str, Any]) -> RenderedExample:
    """render_fields as it was before the bounds: the same fields, in a plain sandbox."""
    prompt = _plain_render(template.template, row)
    answer = _plain_render(template.answer, _answer_context(template, row))
    system = None if template.system is None else _plain_render(template.system, row)
    return RenderedExample(prompt=prompt, answer=answer, system=system)


def workload() -> list[tuple[PromptTemplate, dict[str, Any]]]:
    """(template, row) pairs: each sample row fills every column a template reads (a missing
    one takes the row's text, every other optional one is left empty); labels take the
    template's label_map keys in turn."""
    rows = [row for path in SAMPLES for row in csv.DictReader(path.open(encoding="utf-8"))]
    pairs = []
    for path in sorted(PROMPTS_DIR.glob("*.yaml")):
        template = load_template(path.stem)
        keys = itertools.cycle(template.label_map or [None])
        for i, row in enumerate(rows):
            filled = {name: row.get(name, row["text"]) for name in template.variables()}
            if "input" in filled and i % 2:
                filled["input"] = ""  # alpaca's optional input, both ways
            key = next(keys)
            if key is not None:
                filled["label"] = key
            pairs.append((template, filled))
    return pairs


def renders_per_second(render: Any, pairs: list[Any], rounds: int) -> float:
    started = time.perf_counter()
    for _ in range(rounds):
        for template, row in pairs:
            render(template, row)
    return rounds * len(pairs) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="passes over the workload per timing")
    parser.add_argument("--repeats", type=int, default=5, help="timings per side (best is kept)")
    args = parser.parse_args()
    pairs = workload()
    for template, row in pairs:  # same text both ways, and both caches warm
        assert render_fields(template, row) == plain_render_fields(template, row), template.name
    plain = bounded = 0.0
    for _ in range(args.repeats):  # interleaved, so a busy machine slows both alike
        plain = max(plain, renders_per_second(plain_render_fields, pairs, args.rounds))
        bounded = max(bounded, renders_per_second(render_fields, pairs, args.rounds))
    templates = len({template.name for template, _ in pairs})
    print(f"{len(pairs)} renderings ({templates} templates × {len(pairs) // templates} rows)")
    print(f"plain sandbox:   {plain:10,.0f} render_fields/s")
    print(f"bounded sandbox: {bounded:10,.0f} render_fields/s")
    print(f"bounded / plain: {bounded / plain:.2f}  (cost per rendering ×{plain / bounded:.2f})")


if __name__ == "__main__":
    main()
