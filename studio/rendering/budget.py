"""What one rendering may spend: the operator's render limits, the per-rendering budget of
steps, seconds and characters (found through a ContextVar), and the refusal naming the setting."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from jinja2 import nodes

from studio.hosting import Limits
from studio.rendering.errors import RenderLimitError
from studio.rendering.sizes import size_of

# Templates are user-written and run on a shared server, so every rendering has a budget
# (Budget): steps (calls, attribute and item look-ups, filters, tests, loop iterations) against
# render_steps, a wall-clock deadline (render_seconds), and characters: render_chars for any one
# value built and for the output, and BUILT_FACTOR times that for all values built together
# (many medium values held at once, e.g. in a list, are as bad as one big one). Where a single
# operation could allocate a huge result before it returns (padding and format widths, replace,
# repetition, join, lipsum, ...), its size is estimated from the arguments and refused first
# (studio.rendering.sizes).

BUILT_FACTOR = 10
_SETTING = {
    "chars": "STUDIO_MAX_RENDER_CHARS",
    "built": "STUDIO_MAX_RENDER_CHARS",
    "steps": "STUDIO_MAX_RENDER_STEPS",
    "seconds": "STUDIO_MAX_RENDER_SECONDS",
}
_LIMITS = Limits()


def set_limits(limits: Limits) -> None:
    """The limits every budget starts from from now on (see configure_rendering)."""
    global _LIMITS
    _LIMITS = limits


def rendering_limits() -> Limits:
    """The limits renderings run under now (see configure_rendering)."""
    return _LIMITS


def refusal(kind: str, limits: Limits) -> RenderLimitError:
    """The error for passing one bound: 'chars', 'built', 'steps' or 'seconds'."""
    if kind == "chars":
        what = f"the result would exceed {limits.render_chars:,} characters"
    elif kind == "built":
        what = (
            f"the template would build more than {limits.render_chars * BUILT_FACTOR:,} "
            f"characters of text in all ({BUILT_FACTOR} × the most one result may have)"
        )
    elif kind == "steps":
        what = (
            f"the template would take more than {limits.render_steps:,} steps (loop "
            "iterations, calls, look-ups, filters and tests)"
        )
    else:
        what = f"the template ran for more than {limits.render_seconds:g} seconds"
    setting = _SETTING[kind]
    return RenderLimitError(
        f"rendering stopped: {what} ({setting}). Templates whose results are too large or that "
        "run too long are not allowed, so that no prompt can stall the studio. Fix: make the "
        f"template do less, or ask the operator to raise {setting}"
    )


class Budget:
    """What one rendering may still spend. One per rendering, found through BUDGET (a
    ContextVar), so renderings in concurrent threads or tasks never share one."""

    __slots__ = ("built", "chars", "deadline", "limits", "max_built", "max_steps", "sizes", "steps")

    def __init__(self, limits: Limits | None = None) -> None:
        limits = limits or _LIMITS  # the limits configured now
        self.limits = limits
        self.chars = limits.render_chars
        self.max_built = limits.render_chars * BUILT_FACTOR
        self.max_steps = limits.render_steps
        self.deadline = time.monotonic() + limits.render_seconds
        self.steps = 0
        self.built = 0
        # Sizes of lists, tuples and dicts already measured (immutable in this sandbox), with
        # the object itself so that its id stays its own: growing a list item by item is linear.
        self.sizes: dict[int, tuple[Any, int]] = {}

    def step(self) -> None:
        self.steps += 1
        if self.steps > self.max_steps:
            raise refusal("steps", self.limits)
        if time.monotonic() > self.deadline:
            raise refusal("seconds", self.limits)

    def check(self, size: int) -> None:
        """Refuse a value of (an upper estimate of) this many characters, before building it."""
        if size > self.chars:
            raise refusal("chars", self.limits)

    def build(self, size: int) -> None:
        """Count characters built towards the rendering's total."""
        self.built += size
        if self.built > self.max_built:
            raise refusal("built", self.limits)

    def size(self, value: Any, nested: bool = False) -> int:
        kind = type(value)
        if kind is str and not nested:
            return len(value)
        if kind is int:
            return int(value.bit_length()) // 3 + 3
        size = size_of(value, self.chars, self.sizes, nested)
        if not nested and isinstance(value, list | tuple | dict):
            self.sizes[id(value)] = (value, size)
        return size

    def produced(self, value: Any) -> Any:
        """A value just built (or handed on): refused if too big, else counted."""
        size = len(value) if type(value) is str else self.size(value)
        if size > self.chars:
            raise refusal("chars", self.limits)
        self.built += size
        if self.built > self.max_built:
            raise refusal("built", self.limits)
        return value

    def materialize(self, items: Iterator[Any]) -> list[Any]:
        """A lazy sequence (map, select, ...) as a list, each item a step, refused once too big."""
        out: list[Any] = []
        total = 2
        for item in items:
            self.step()
            total += self.size(item, nested=True) + 2
            self.check(total)
            out.append(item)
        self.build(total)
        self.sizes[id(out)] = (out, total)
        return out


class Folding(Budget):
    """The budget while a template compiles. Jinja then folds constant expressions, calling
    filters, tests and look-ups on constants; refusing each (Impossible) leaves the work to render
    time and its budget, so a cached compiled template never holds a huge folded constant."""

    __slots__ = ()

    def step(self) -> None:
        raise nodes.Impossible()


# The budget the running rendering spends. render() sets it itself, with no helper call or
# `with`: it runs thousands of times per comparison, and each call there shows in the benchmark.
BUDGET: ContextVar[Budget | None] = ContextVar("render_budget", default=None)


@contextlib.contextmanager
def shared_rendering() -> Iterator[None]:
    """Renderings inside the block share one budget, so the limits bound them together: for
    one request that renders many times (validating every label_map value, a prompt's shots)."""
    token = BUDGET.set(Budget())
    try:
        yield
    finally:
        BUDGET.reset(token)


def current() -> Budget:
    """The budget the running operation spends."""
    # Outside a rendering (a direct .render()) each operation gets a fresh budget: no running
    # totals, but every size check still holds.
    budget = BUDGET.get()
    return budget if budget is not None else Budget()
