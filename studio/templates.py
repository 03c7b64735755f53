"""Prompt templates: the YAML library in prompts/, strict validation, sandboxed Jinja2 rendering,
and the exact few-shot prompt text a model sees in chat or completion mode."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import re
import tempfile
import time
import types
from collections import deque
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    KeysView,
    Mapping,
    Sequence,
    ValuesView,
)
from contextvars import ContextVar
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from string import Formatter
from typing import Any, Literal

import jinja2
import yaml
from jinja2 import StrictUndefined, meta, nodes
from jinja2.exceptions import SecurityError, TemplateSyntaxError, UndefinedError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, LoopContext, Macro, Undefined, markup_join, str_join
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from jinja2.utils import Namespace, generate_lorem_ipsum, pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer
from markupsafe import Markup
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from studio.hosting import Limits

PROMPTS_DIR = Path(__file__).resolve().parents[1] / "prompts"
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")
JINJA_FIELDS = ("system", "template", "answer")
_SANDBOX_NOTE = (
    "That is not allowed: templates run in a sandbox and may use only the data's variables, "
    "Jinja2 filters and tests."
)
# What construction errors name: parse_template sets the file, else the template's own name.
_SOURCE: ContextVar[str | None] = ContextVar("template_source", default=None)


class TemplateError(ValueError):
    """A template that fails to load, validate or render; the message says where, and the fix."""


class RenderLimitError(TemplateError):
    """A rendering stopped for the work or size it would take; the message names the setting."""


# -- bounded rendering -------------------------------------------------------------------------
# Templates are user-written and run on a shared server, so every rendering has a budget
# (_Budget): steps (calls, attribute and item look-ups, filters, tests, loop iterations) against
# render_steps, a wall-clock deadline (render_seconds), and characters: render_chars for any one
# value built and for the output, and _BUILT_FACTOR times that for all values built together
# (many medium values held at once, e.g. in a list, are as bad as one big one). Where a single
# operation could allocate a huge result before it returns (padding and format widths, replace,
# repetition, join, lipsum, ...), its size is estimated from the arguments and refused first.

_LIMITS = Limits()
_BUILT_FACTOR = 10
_SETTING = {
    "chars": "STUDIO_MAX_RENDER_CHARS",
    "built": "STUDIO_MAX_RENDER_CHARS",
    "steps": "STUDIO_MAX_RENDER_STEPS",
    "seconds": "STUDIO_MAX_RENDER_SECONDS",
}
_DONE = object()


def configure_rendering(limits: Limits) -> None:
    """Bound every rendering from now on by these limits: the operator's STUDIO_MAX_RENDER_*
    settings, as HostingPolicy.limits. Until it is called, Limits() defaults hold."""
    global _LIMITS
    _LIMITS = limits
    _compiled.cache_clear()  # constants folded at compile time were checked against the old ones


def rendering_limits() -> Limits:
    """The limits renderings run under now (see configure_rendering)."""
    return _LIMITS


def _refusal(kind: str, limits: Limits) -> RenderLimitError:
    if kind == "chars":
        what = f"the result would exceed {limits.render_chars:,} characters"
    elif kind == "built":
        what = (
            f"the template would build more than {limits.render_chars * _BUILT_FACTOR:,} "
            f"characters of text in all ({_BUILT_FACTOR} × the most one result may have)"
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


class _Budget:
    """What one rendering may still spend. One per _render call, found through _BUDGET (a
    ContextVar), so renderings in concurrent threads or tasks never share one."""

    __slots__ = ("built", "chars", "deadline", "limits", "max_built", "max_steps", "sizes", "steps")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.chars = limits.render_chars
        self.max_built = limits.render_chars * _BUILT_FACTOR
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
            raise _refusal("steps", self.limits)
        if time.monotonic() > self.deadline:
            raise _refusal("seconds", self.limits)

    def check(self, size: int) -> None:
        """Refuse a value of (an upper estimate of) this many characters, before building it."""
        if size > self.chars:
            raise _refusal("chars", self.limits)

    def build(self, size: int) -> None:
        """Count characters built towards the rendering's total."""
        self.built += size
        if self.built > self.max_built:
            raise _refusal("built", self.limits)

    def size(self, value: Any, nested: bool = False) -> int:
        kind = type(value)
        if kind is str and not nested:
            return len(value)
        if kind is int:
            return int(value.bit_length()) // 3 + 3
        size = _size(value, self.chars, self.sizes, nested)
        if not nested and isinstance(value, list | tuple | dict):
            self.sizes[id(value)] = (value, size)
        return size

    def produced(self, value: Any) -> Any:
        """A value just built (or handed on): refused if too big, else counted."""
        size = len(value) if type(value) is str else self.size(value)
        if size > self.chars:
            raise _refusal("chars", self.limits)
        self.built += size
        if self.built > self.max_built:
            raise _refusal("built", self.limits)
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


class _Folding(_Budget):
    """The budget while a template compiles. Jinja then folds constant expressions, calling
    filters, tests and look-ups on constants; refusing each (Impossible) leaves the work to render
    time and its budget, so a cached compiled template never holds a huge folded constant."""

    __slots__ = ()

    def step(self) -> None:
        raise nodes.Impossible()


_BUDGET: ContextVar[_Budget | None] = ContextVar("render_budget", default=None)


@contextlib.contextmanager
def shared_rendering() -> Iterator[None]:
    """Renderings inside the block share one budget, so the limits bound them together: for
    one request that renders many times (validating every label_map value, a prompt's shots)."""
    token = _BUDGET.set(_Budget(_LIMITS))
    try:
        yield
    finally:
        _BUDGET.reset(token)


def _current() -> _Budget:
    # Outside _render (compile-time constant folding, a direct .render()) each operation gets a
    # fresh budget: no running totals, but every size check still holds.
    budget = _BUDGET.get()
    return budget if budget is not None else _Budget(_LIMITS)


def _size(
    value: Any, limit: int, cache: dict[int, tuple[Any, int]] | None = None, nested: bool = False
) -> int:
    """An upper estimate of len(str(value)) (of repr(value) when nested, as inside a list),
    found without building it; the walk stops as soon as the total passes `limit`."""
    total = 0
    levels: list[Iterator[Any]] = [iter((value,))]
    inner = [nested]
    owners = [0]  # the namespace each level walks: a namespace may hold itself
    walking: set[int] = set()
    while levels and total <= limit:
        item = next(levels[-1], _DONE)
        if item is _DONE:
            levels.pop()
            inner.pop()
            walking.discard(owners.pop())
            continue
        if isinstance(item, str):
            n = len(item)
            if not inner[-1] or n > limit:
                total += n
            elif item.isprintable():
                total += (2 * n if "\\" in item or "'" in item else n) + 2
            else:
                total += 10 * n + 2  # repr's \x.., \u.... and \U........ escapes
        elif item is None or isinstance(item, bool | float | complex):
            total += 48
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 3
        elif isinstance(item, bytes | bytearray):
            total += 4 * len(item) + 3
        elif isinstance(item, Undefined):
            continue
        elif cache and (known := cache.get(id(item))) is not None and known[0] is item:
            total += known[1]
        elif isinstance(item, Namespace):
            if id(item) in walking:
                total += 20
                continue
            attrs = object.__getattribute__(item, "_Namespace__attrs")
            total += 14 + 4 * len(attrs)
            walking.add(id(item))
            levels.append(chain.from_iterable(attrs.items()))
            inner.append(True)
            owners.append(id(item))
        elif isinstance(item, Mapping):
            total += 2 + 4 * len(item)
            levels.append(chain.from_iterable(item.items()))
            inner.append(True)
            owners.append(0)
        elif isinstance(
            item, list | tuple | set | frozenset | deque | ItemsView | KeysView | ValuesView
        ):
            total += 16 + 2 * len(item)  # brackets (or a view's name) and ", " between items
            levels.append(iter(item))
            inner.append(True)
            owners.append(0)
        else:
            total += 64  # a range, macro, loop, cycler, generator...: a short repr
    return total


def _depth(value: Any, limit: int) -> int:
    """How deeply lists and dicts nest in value (for indented dumps), seeing at most limit items."""
    deepest = seen = 0
    levels: list[Iterator[Any]] = [iter((value,))]
    while levels and seen <= limit:
        item = next(levels[-1], _DONE)
        if item is _DONE:
            levels.pop()
            continue
        seen += 1
        if isinstance(item, Mapping):
            levels.append(iter(item.values()))
        elif isinstance(item, list | tuple | set | frozenset):
            levels.append(iter(item))
        else:
            continue
        deepest = max(deepest, len(levels) - 1)
    return deepest


def _number(digits: str) -> int:
    return int(digits) if len(digits) <= 18 else 10**18


_PRINTF = re.compile(r"%(?:\(([^()]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.DOTALL)
_SPEC_NUMBER = re.compile(r"\d+")


def _printf_size(budget: _Budget, fmt: str | bytes, values: Any) -> int:
    """An upper estimate of len(fmt % values): every width and precision (a '*' takes its
    number from values, as '%' does) plus the size of every value converted."""
    text = fmt.decode("latin-1") if isinstance(fmt, bytes) else fmt
    escapes = 6 if isinstance(fmt, Markup) else 1  # Markup's % escapes what it inserts
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else None
    total = len(text)
    index = 0
    for match in _PRINTF.finditer(text):
        key, width, precision, conversion = match.groups()
        if conversion == "%":
            continue
        for number in (width, precision):
            if number == "*":
                star = positional[index] if index < len(positional) else 0
                index += 1
                total += abs(star) if isinstance(star, int) else 0
            elif number:
                total += _number(number)
        if key is not None:
            value = mapping.get(key) if mapping is not None else None
        else:
            value = positional[index] if index < len(positional) else None
            index += 1
        size = budget.size(value, nested=conversion in "ra")
        total += size * (10 if conversion == "a" else escapes) + 320  # + a float's digits
        if total > budget.chars:
            break
    return total


def _join_size(budget: _Budget, items: Any, separator: int) -> int:
    """An upper estimate of separator.join(map(str, items)) for a separator of that length."""
    if isinstance(items, str):
        return len(items) + separator * max(len(items) - 1, 0)
    if not isinstance(items, Iterable) or isinstance(items, Undefined):
        return 0
    total = count = 0
    for item in items:
        total += budget.size(item)
        count += 1
        if total + separator * (count - 1) > budget.chars:
            break
    return total + separator * max(count - 1, 0)


_CASE_METHODS = frozenset({"upper", "lower", "title", "capitalize", "swapcase", "casefold"})


def _text_method_size(
    budget: _Budget, text: str | bytes, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> int | None:
    """An upper estimate of what str/bytes method `name` returns, None where it is no bigger
    than its inputs (split, strip, find, ...)."""
    n = len(text)
    if name in ("center", "ljust", "rjust", "zfill"):
        width = args[0] if args else kwargs.get("width")
        return max(n, width) if isinstance(width, int) else None
    if name == "expandtabs":
        tabsize = args[0] if args else kwargs.get("tabsize", 8)
        tabs = text.count("\t") if isinstance(text, str) else text.count(b"\t")
        return n + tabs * max(tabsize, 0) if isinstance(tabsize, int) else None
    if name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        count = args[2] if len(args) > 2 else kwargs.get("count", -1)
        try:
            found = text.count(old) if old else n + 1
        except TypeError:
            found = n + 1
        if isinstance(count, int) and count >= 0:
            found = min(found, count)
        cut = len(old) if isinstance(old, str | bytes) else 0
        return n + found * max(0, budget.size(new) - cut)
    if name == "join":
        return _join_size(budget, args[0] if args else None, n)
    if name == "translate" and args:
        table = args[0]
        if isinstance(table, Mapping):
            values: Iterable[Any] = table.values()
        elif isinstance(table, list | tuple):
            values = table
        else:
            return n * 10
        widest = max((0 if isinstance(v, int) else budget.size(v) for v in values), default=1)
        return n * max(widest, 1)
    if name in _CASE_METHODS:
        return 3 * n  # 'ß'.upper() is 'SS', 'ﬃ' is 'FFI'
    if name in ("encode", "decode", "hex"):
        return 10 * n  # errors='xmlcharrefreplace' writes '&#1114111;' for one character
    return None


def _call_size(
    budget: _Budget, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[int | None, tuple[Any, ...]]:
    """An upper estimate of what calling obj returns, where it could be huge, and the args to
    call it with (a lazy sequence for str.join becomes a list, counted)."""
    owner = getattr(obj, "__self__", None)
    name = getattr(obj, "__name__", "")
    if isinstance(owner, str | bytes):
        if name == "join" and args and isinstance(args[0], Iterator):
            args = (budget.materialize(args[0]), *args[1:])
        size = _text_method_size(budget, owner, name, args, kwargs)
        if size is not None and isinstance(owner, Markup):
            size *= 6  # Markup's methods escape their arguments
        return size, args
    if isinstance(owner, int) and name == "to_bytes":
        length = args[0] if args else kwargs.get("length", 1)
        return (length if isinstance(length, int) else None), args
    if obj is generate_lorem_ipsum:
        n, _html, low, high = (*args, *(None,) * 4)[:4]
        n = kwargs.get("n", 5 if n is None else n)
        low = kwargs.get("min", 20 if low is None else low)
        high = kwargs.get("max", 100 if high is None else high)
        if all(isinstance(v, int) for v in (n, low, high)):
            return max(n, 0) * (max(low, high, 0) * 16 + 12), args  # words of up to 12 + ", "
    return None, args


# Filters that could build a big result from small arguments, with an upper estimate of the
# result's size from those arguments (the value first, as the template passes it).
def _same(budget: _Budget, value: Any, *_: Any, **__: Any) -> int:
    return budget.size(value)


def _triple(budget: _Budget, value: Any, *_: Any, **__: Any) -> int:
    return 3 * budget.size(value)


def _escaped(budget: _Budget, value: Any, *_: Any, **__: Any) -> int:
    return 6 * budget.size(value)


def _center(budget: _Budget, value: Any, width: Any = 80, *_: Any, **__: Any) -> int:
    return max(budget.size(value), width if isinstance(width, int) else 0)


def _indent(budget: _Budget, s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    n = budget.size(s)
    lines = s.count("\n") + 1 if isinstance(s, str) else n + 1
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return n + lines * max(pad, 0)


def _wordwrap(
    budget: _Budget,
    s: Any,
    width: Any = 79,
    break_long_words: Any = True,
    wrapstring: Any = None,
    *_: Any,
    **__: Any,
) -> int:
    n = budget.size(s)
    lines = n + 1
    if isinstance(width, int) and width > 0:
        # Two neighbouring lines hold more than `width` characters of the text between them.
        paragraphs = s.count("\n") + 1 if isinstance(s, str) else n + 1
        lines = min(lines, 2 * n // width + 2 * paragraphs)
    return n + lines * (1 if wrapstring is None else budget.size(wrapstring))


def _replace(budget: _Budget, s: Any, old: Any, new: Any, count: Any = None) -> int:
    n = budget.size(s)
    found = s.count(old) if isinstance(s, str) and isinstance(old, str) and old else n + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return n + found * max(0, budget.size(new) - budget.size(old))


def _join(budget: _Budget, value: Any, d: Any = "", *_: Any, **__: Any) -> int:
    return _join_size(budget, value, budget.size(d))


def _format(budget: _Budget, value: Any, *args: Any, **kwargs: Any) -> int:
    if not isinstance(value, str):
        budget.check(budget.size(value))
        value = str(value)
    return _printf_size(budget, value, kwargs or args)


def _fill(budget: _Budget, value: Any, count: Any, fill_with: Any) -> int:
    """batch and slice: `count` lists, or a list padded with up to `count` fill values."""
    extra = budget.size(fill_with, nested=True) + 2 if fill_with is not None else 0
    return budget.size(value) + (max(count, 0) * (extra + 4) if isinstance(count, int) else 0)


def _batch(budget: _Budget, value: Any, linecount: Any, fill_with: Any = None) -> int:
    return _fill(budget, value, linecount, fill_with)


def _slice(budget: _Budget, value: Any, slices: Any, fill_with: Any = None) -> int:
    return _fill(budget, value, slices, fill_with)


def _sum(budget: _Budget, iterable: Any, attribute: Any = None, start: Any = 0) -> int:
    if isinstance(start, int | float | Undefined) or not isinstance(iterable, Iterable):
        return 0
    total = budget.size(start)
    count = 0
    for item in iterable:
        total += budget.size(item)
        count += 1
        if total > budget.chars:
            return total
    budget.build(count * total // 2)  # sum() builds a new, longer list or text per item
    return total


def _list(budget: _Budget, value: Any) -> int:
    return 5 * len(value) if isinstance(value, str) else budget.size(value)


def _tojson(budget: _Budget, value: Any, indent: Any = None) -> int:
    n = budget.size(value)
    pad = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    return 6 * n + (n * max(pad, 0) * _depth(value, budget.chars) if pad else 0)


def _pprint(budget: _Budget, value: Any) -> int:
    n = budget.size(value, nested=True)
    return 2 * n + n * _depth(value, budget.chars)


def _urlize(
    budget: _Budget,
    value: Any,
    trim_url_limit: Any = None,
    nofollow: Any = False,
    target: Any = None,
    rel: Any = None,
    extra_schemes: Any = None,
) -> int:
    n = budget.size(value)
    words = sum(1 for _ in _WORD.finditer(value)) if isinstance(value, str) else n
    attributes = budget.size(target or "") + budget.size(rel or "")
    return 13 * n + words * (80 + attributes)


def _xmlattr(budget: _Budget, d: Any, *_: Any, **__: Any) -> int:
    return 6 * budget.size(d) + (8 * len(d) if isinstance(d, Mapping) else 0)


def _urlencode(budget: _Budget, value: Any) -> int:
    return 12 * budget.size(value)  # %XX for each of a character's up to 4 UTF-8 bytes


_WORD = re.compile(r"\S+")
_FILTER_SIZES: dict[str, Callable[..., int]] = {
    "batch": _batch,
    "capitalize": _triple,
    "center": _center,
    "e": _escaped,
    "escape": _escaped,
    "forceescape": _escaped,
    "format": _format,
    "indent": _indent,
    "join": _join,
    "list": _list,
    "lower": _triple,
    "pprint": _pprint,
    "replace": _replace,
    "reverse": _same,
    "safe": _same,
    "slice": _slice,
    "string": _same,
    "striptags": _same,
    "sum": _sum,
    "title": _triple,
    "tojson": _tojson,
    "trim": _same,
    "truncate": _same,  # never longer than its text: the end replaces what is cut
    "upper": _triple,
    "urlencode": _urlencode,
    "urlize": _urlize,
    "wordwrap": _wordwrap,
    "xmlattr": _xmlattr,
}


def _bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """func as a step: a lazy value becomes a list (counted), a big result is refused from its
    estimate before func runs, and what func returns is sized. wraps() keeps jinja_pass_arg."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    estimate = _FILTER_SIZES.get(name)

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = _current()
        budget.step()
        if len(args) > skip and isinstance(args[skip], Iterator):
            args = (*args[:skip], budget.materialize(args[skip]), *args[skip + 1 :])
        if estimate is not None and len(args) > skip:
            budget.check(estimate(budget, *args[skip:], **kwargs))
        return budget.produced(func(*args, **kwargs))

    return bounded


def _bounded_test(func: Any) -> Callable[..., Any]:
    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        _current().step()
        return func(*args, **kwargs)

    return bounded


class _Counted:
    """A for-loop's iterable: each iteration is a step and builds the loop body's text."""

    __slots__ = ("items", "text")

    def __init__(self, items: Any, text: int) -> None:
        self.items = items
        self.text = text

    def __iter__(self) -> Iterator[Any]:
        budget = _current()
        text = self.text
        for item in self.items:
            budget.step()
            if text:
                budget.build(text)
            yield item

    def __len__(self) -> int:  # loop.length, without draining the items first
        return len(self.items)


def _loop(items: Any, text: Any = 0) -> _Counted:
    # Also reachable by name from a template ('x|_bounded_loop(-9)'): never a negative charge.
    return _Counted(items, text if isinstance(text, int) and text > 0 else 0)


@pass_eval_context
def _concat(eval_ctx: EvalContext, parts: tuple[Any, ...]) -> str:
    """'~': each part sized before it becomes text (str() of a list of big texts is huge)."""
    budget = _current()
    if not isinstance(parts, tuple):  # only when a template names this filter itself
        parts = tuple(budget.materialize(iter(parts)))
    total = 0
    for part in parts:
        total += budget.size(part)
        budget.check(total)
    budget.build(total)
    return markup_join(parts) if eval_ctx.autoescape else str_join(parts)


def _set_value(value: Any) -> Any:
    """{% set ns.attr = value %}: the value a namespace keeps is bounded too."""
    budget = _current()
    budget.check(budget.size(value))
    return value


def _block_value(value: Any) -> Any:
    """{% set x %}...{% endset %}: the captured text is a value built."""
    return _current().produced(value)


@pass_context
def _output(context: Context, value: Any) -> Any:
    """Every {{ expression }} is sized before str() runs on it: str([big] * 9) is big."""
    return _current().produced(value)


_LOOP, _CONCAT, _SET, _BLOCK = "_bounded_loop", "_bounded_concat", "_bounded_set", "_bounded_block"


def _constant_text(body: list[nodes.Node]) -> int:
    """Template text one pass of a loop body can output: what is not an expression (those are
    sized when output) or a nested loop's body (counted per its own iterations)."""
    total = 0
    todo: list[nodes.Node] = list(body)
    while todo:
        node = todo.pop()
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif isinstance(node, nodes.For):
            todo.extend(node.else_)
        elif not isinstance(node, nodes.Macro | nodes.CallBlock):  # run when called: sized then
            todo.extend(node.iter_child_nodes())
    return total


class _Bounding(NodeTransformer):
    """Adds the hooks Jinja lacks to a parsed template: each for-loop's iterable counts its
    iterations, '~' sizes its parts before joining them, and the values of namespace
    attributes and {% set %} blocks are bounded."""

    def __init__(self, environment: jinja2.Environment) -> None:
        self.environment = environment

    def _filter(self, node: nodes.Node | None, name: str, *args: nodes.Node) -> nodes.Filter:
        lineno = 1 if node is None else node.lineno
        new = nodes.Filter(node, name, list(args), [], None, None, lineno=lineno)
        new.set_environment(self.environment)
        return new

    def visit_For(self, node: nodes.For) -> nodes.Node:
        self.generic_visit(node)
        node.iter = self._filter(node.iter, _LOOP, nodes.Const(_constant_text(node.body)))
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return self._filter(nodes.Tuple(node.nodes, "load", lineno=node.lineno), _CONCAT)

    def visit_Assign(self, node: nodes.Assign) -> nodes.Node:
        self.generic_visit(node)
        if isinstance(node.target, nodes.NSRef) or any(node.target.find_all(nodes.NSRef)):
            node.node = self._filter(node.node, _SET)
        return node

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        self.generic_visit(node)
        captured = self._filter(None, _BLOCK)  # applied to the block's text, before its filters
        if node.filter is None:
            node.filter = captured
        else:
            innermost = node.filter
            while isinstance(innermost.node, nodes.Filter):
                innermost = innermost.node
            innermost.node = captured
        return node


class _BoundedFields(Formatter):
    """str.format with each replacement field sized before it is formatted: its value plus
    every number in its format spec (so '{:>999999999}' is refused, not padded)."""

    budget: _Budget
    total = 0
    escapes = 1

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("r", "a"):  # ascii() escapes every non-ASCII character too
            size = self.budget.size(value, nested=True)
            self.budget.check(size * 10 if conversion == "a" else size)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        widths = sum(_number(n) for n in _SPEC_NUMBER.findall(format_spec))
        self.total += (self.budget.size(value) + widths) * self.escapes
        self.budget.check(self.total)
        return super().format_field(value, format_spec)


class _BoundedFormatter(_BoundedFields, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_BoundedFields, SandboxedEscapeFormatter):
    escapes = 6


class _Sandbox(ImmutableSandboxedEnvironment):
    # The sandbox blocks attribute escapes but not work: every rendering through _render has a
    # _Budget, and these hooks spend it. Integer arithmetic stays bounded in bits, as before:
    # '{{ 3 ** (10 ** 9) }}' would hang a shared (Spaces) studio.
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    max_result_bits = 1 << 16

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=_output, **options)
        self.filters = {name: _bounded_filter(name, f) for name, f in self.filters.items()}
        self.tests = {name: _bounded_test(f) for name, f in self.tests.items()}
        self.filters.update(
            {_LOOP: _loop, _CONCAT: _concat, _SET: _set_value, _BLOCK: _block_value}
        )

    def _generate(
        self,
        source: nodes.Template,
        name: str | None,
        filename: str | None,
        defer_init: bool = False,
    ) -> str:
        # Jinja has no hook per loop iteration or per '~'. Rewriting the parsed template just
        # before code generation reaches every loop and concatenation (in macros, call blocks,
        # set blocks, nested loops) in one tree walk of public node types, while parse() (what
        # validation and variable discovery read) still returns the template as written. A code
        # generator overriding visit_For would instead depend on the generator's internals.
        _Bounding(self).visit(source)
        token = _BUDGET.set(_Folding(_LIMITS))
        try:
            return super()._generate(source, name, filename, defer_init=defer_init)
        finally:
            _BUDGET.reset(token)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = _current()
        budget.step()
        if isinstance(obj, LoopContext) and args:  # loop(children) in a recursive for-loop
            outer = getattr(obj, "_iterable", None)
            args = (_Counted(args[0], outer.text if isinstance(outer, _Counted) else 0), *args[1:])
        elif not isinstance(obj, Macro):  # a macro's result is sized when it returns
            size, args = _call_size(budget, obj, args, kwargs)
            if size is not None:
                budget.check(size)
        return budget.produced(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _current().step()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _current().step()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if _too_big(operator, left, right, self.max_result_bits):
            raise SecurityError(
                f"'{operator}' on these values builds a result too large to render."
            )
        size = _binop_size(operator, left, right)
        if size is None:
            return super().call_binop(context, operator, left, right)
        budget = _current()
        estimate = size(budget)
        budget.check(estimate)
        result = super().call_binop(context, operator, left, right)
        if isinstance(result, list | tuple):
            budget.sizes[id(result)] = (result, estimate)  # not walked again
        return budget.produced(result)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # As the sandbox's own, with a formatter that sizes each field before formatting it.
        is_method = isinstance(value, types.MethodType | types.BuiltinMethodType)
        if not is_method or value.__name__ not in ("format", "format_map"):
            return None
        text = value.__self__
        if not isinstance(text, str):
            return None
        is_format_map = value.__name__ == "format_map"

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            if is_format_map:
                if kwargs:
                    raise TypeError("format_map() takes no keyword arguments")
                if len(args) != 1:
                    raise TypeError(f"format_map() takes exactly one argument ({len(args)} given)")
                kwargs, args = args[0], ()
            formatter: _BoundedFields
            if isinstance(text, Markup):
                formatter = _BoundedEscapeFormatter(self, escape=text.escape)
            else:
                formatter = _BoundedFormatter(self)
            formatter.budget = _current()
            formatter.total = len(text)
            return type(text)(formatter.vformat(text, args, kwargs))

        return functools.update_wrapper(bounded_format, value)


def _too_big(operator: str, left: Any, right: Any, max_bits: int) -> bool:
    """Integer arithmetic past max_bits (texts and lists are sized in characters instead)."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return False
    if operator == "**":
        return abs(left) > 1 and left.bit_length() * abs(right) > max_bits
    if operator == "*":
        return left.bit_length() + right.bit_length() > max_bits
    return False


def _binop_size(operator: str, left: Any, right: Any) -> Callable[[_Budget], int] | None:
    """How to estimate the result of an intercepted operator where it builds text or a list."""
    if operator == "+" and isinstance(left, str | bytes | list | tuple):
        return lambda budget: budget.size(left) + budget.size(right)
    if operator == "*":
        seq, count = (left, right) if isinstance(right, int) else (right, left)
        if isinstance(seq, str | bytes) and isinstance(count, int):
            return lambda budget: budget.size(seq) * max(count, 0)
        if isinstance(seq, list | tuple) and isinstance(count, int):  # the brackets once
            return lambda budget: max(budget.size(seq) - 16, 0) * max(count, 0) + 16
    if operator == "%" and isinstance(left, str | bytes):
        return lambda budget: _printf_size(budget, left, right)
    return None


_ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@functools.lru_cache(maxsize=512)
def _compiled(source: str) -> jinja2.Template:
    # Comparisons render the same few sources thousands of times; compiling is the slow part.
    return _ENV.from_string(source)


@functools.lru_cache(maxsize=512)
def _variables_of(source: str) -> frozenset[str]:
    return frozenset(meta.find_undeclared_variables(_ENV.parse(source)))


_LOADING_TAGS: dict[type[nodes.Node], str] = {
    nodes.Include: "{% include %}",
    nodes.Import: "{% import %}",
    nodes.FromImport: "{% from ... import %}",
    nodes.Extends: "{% extends %}",
}


def _is_private(name: object) -> bool:
    # Dunders and name-mangled privates are how sandbox escapes start; a plain '_id' key is data.
    return isinstance(name, str) and name.startswith("_") and "__" in name


def _private_names(ast: nodes.Template) -> list[str]:
    """Private attribute names a template spells out, caught at save time rather than at render."""
    names: list[Any] = [node.attr for node in ast.find_all(nodes.Getattr)]
    names += [n.arg.value for n in ast.find_all(nodes.Getitem) if isinstance(n.arg, nodes.Const)]
    for node in ast.find_all(nodes.Filter):
        if node.name == "attr" and node.args and isinstance(node.args[0], nodes.Const):
            names.append(node.args[0].value)
    return sorted({name for name in names if _is_private(name)})


class PromptTemplate(BaseModel):
    """One prompt template: how a dataset row becomes a prompt and its gold answer.

    Build it as PromptTemplate(**fields) or with parse_template: both raise TemplateError.
    (model_validate raises pydantic's ValidationError around the same message.)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    name: str = Field(description="slug, also the file name: prompts/<name>.yaml")
    description: str = Field("", description="what the template is for")
    mode: Literal["chat", "completion"] = Field(
        "chat", description="chat: the model's chat template, shots as turns; completion: raw text"
    )
    system: str | None = Field(None, description="Jinja2 system message / completion preamble")
    template: str = Field(description="Jinja2 prompt; its variables are the dataset's columns")
    answer: str = Field("{{ label }}", description="Jinja2 gold answer, rendered after label_map")
    label_map: dict[str, str] | None = Field(None, description="raw label text -> answer word")
    choices: list[str] | None = Field(None, description="answers to score by log-likelihood")
    shot_separator: str = Field("\n\n", description="completion mode: between shots and query")
    target_delimiter: str = Field(" ", description="completion mode: between prompt and answer")

    def __init__(self, **data: Any) -> None:
        # Built from UI fields or code, a bad template raises the same TemplateError as a file.
        try:
            super().__init__(**data)
        except ValidationError as exc:
            name = data.get("name")
            source = _SOURCE.get() or (
                f"template '{name}'" if isinstance(name, str) else "template"
            )
            raise TemplateError(_describe(exc, source)) from exc

    @field_validator("name")
    @classmethod
    def _name_is_slug(cls, value: str) -> str:
        if not NAME_PATTERN.fullmatch(value):
            raise ValueError(
                f"{value!r} is not a valid name (it becomes the file name). Fix: use 1-64 "
                "lowercase letters, digits, '.', '_' or '-', starting with a letter or digit, "
                "e.g. 'my-template'"
            )
        return value

    @field_validator(*JINJA_FIELDS)
    @classmethod
    def _jinja_parses(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return value
        try:
            ast = _ENV.parse(value)
        except TemplateSyntaxError as exc:
            raise ValueError(
                f"Jinja2 syntax error on line {exc.lineno} of {info.field_name}: "
                f"{(exc.message or '').rstrip('.')}. "
                "Fix: close every '{{' with '}}' and every '{%' with '%}' on that line"
            ) from None
        loads = sorted({_LOADING_TAGS[type(n)] for n in ast.find_all(tuple(_LOADING_TAGS))})
        if loads:
            raise ValueError(
                f"uses {', '.join(loads)}: a template cannot read other files or templates. "
                "Fix: write the text into this template (or into system:) instead"
            )
        private = _private_names(ast)
        if private:
            raise ValueError(f"uses the private attribute(s) {', '.join(private)}. {_SANDBOX_NOTE}")
        return value

    @field_validator("label_map", mode="before")
    @classmethod
    def _integer_keys_as_text(cls, value: Any) -> Any:
        # YAML reads an unquoted `0: negative` as the integer 0; labels are matched as text anyway.
        if isinstance(value, dict):
            return {
                str(k) if isinstance(k, int) and not isinstance(k, bool) else k: v
                for k, v in value.items()
            }
        return value

    @field_validator("label_map")
    @classmethod
    def _label_map_not_empty(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None and not value:
            raise ValueError("is empty. Fix: map each raw label to its word, or leave the key out")
        return value

    @field_validator("choices")
    @classmethod
    def _choices_unique(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("is empty. Fix: list the answers to score, or leave the key out")
        repeated = sorted({choice for choice in value if value.count(choice) > 1})
        if repeated:
            raise ValueError(f"lists {', '.join(map(repr, repeated))} more than once")
        return value

    @model_validator(mode="after")
    def _answers_are_choices(self) -> PromptTemplate:
        if not (self.label_map and self.choices):
            return self
        names = _variables_of(self.answer)
        for word in dict.fromkeys(self.label_map.values()):
            rendered = _render(self, "answer", dict.fromkeys(names, word))
            if rendered not in self.choices:
                raise ValueError(
                    f"answer renders {rendered!r} for the label_map value {word!r}, which is not "
                    f"one of choices ({', '.join(self.choices)}). Fix: make every label_map value "
                    "a choice, with answer: '{{ label }}'"
                )
        return self

    def __hash__(self) -> int:
        # The default frozen-model hash fails on the dict and list fields; content is identity.
        return hash(self.content_hash())

    def variables(self) -> set[str]:
        """Names the system, template and answer read from a row (the columns they need)."""
        sources = (self.system, self.template, self.answer)
        return set().union(*(_variables_of(s) for s in sources if s is not None))

    def content_hash(self) -> str:
        """sha256 of all fields as canonical JSON: same content, same hash; any change, new hash."""
        canonical = json.dumps(
            self.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":")
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def to_yaml(self, header: str | None = None) -> str:
        """The template as a library file: a '# ...' comment header, then the keys in order."""
        lines = [
            line if line.startswith("#") else f"# {line}".rstrip()
            for line in (header or self._default_header()).strip("\n").splitlines()
        ]
        return "\n".join(lines) + "\n" + _dump_yaml(self.model_dump(exclude_none=True))

    def _default_header(self) -> str:
        columns = ", ".join(sorted(self.variables())) or "none"
        scoring = (
            f"log-likelihood of each choice ({', '.join(self.choices)})"
            if self.choices
            else "generated text against the answer"
        )
        return "\n".join(
            [
                *(
                    f"{self.name}: {self.description}" if self.description else self.name
                ).splitlines(),
                f"Use: studio compare --template {self.name} ...  (or pick it in the Prompts tab)",
                f"Data columns: {columns}. Mode: {self.mode}.",
                f"Scored by {scoring}.",
            ]
        )


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line strings as '|' blocks, so saved templates read like hand-written ones."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = None
    if "\n" in value:
        style = "|" if value.strip() else '"'
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_BlockDumper.add_representer(str, _represent_str)


def _dump_yaml(data: dict[str, Any]) -> str:
    options: dict[str, Any] = {"sort_keys": False, "allow_unicode": True, "width": 100}
    text = yaml.dump(data, Dumper=_BlockDumper, **options)
    # PyYAML's block style mangles rare line breaks such as U+0085; plain quoting never does.
    if yaml.safe_load(text) != data:
        text = yaml.safe_dump(data, **options)
    return text


def _describe(exc: ValidationError, source: str) -> str:
    return "\n".join(_describe_error(dict(error), source) for error in exc.errors())


def _describe_error(error: dict[str, Any], source: str) -> str:
    key = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        allowed = ", ".join(PromptTemplate.model_fields)
        return f"{source}: unknown key '{key}'; allowed: {allowed}"
    if error["type"] == "missing":
        return f"{source}: key '{key}' is missing. Fix: add it (it is required)"
    if error["type"] == "value_error":
        message = str(error["ctx"]["error"])
    else:
        value = error["input"]
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        message = f"{error['msg']} (got {type(value).__name__} {shown}){_yaml_hint(key, value)}"
    return f"{source}: key '{key}': {message}" if key else f"{source}: {message}"


def _yaml_hint(key: str, value: Any) -> str:
    if isinstance(value, bool):
        return ". Fix: quote it; YAML reads unquoted yes/no/true/false/on/off as booleans"
    if value is None:
        return ". Fix: write '' or leave the key out; YAML reads an empty value as null"
    if isinstance(value, dict) and key in JINJA_FIELDS:
        return f'. Fix: quote it, e.g. {key}: "{{{{ label }}}}"; YAML reads {{...}} as a mapping'
    return ""


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


def _render(template: PromptTemplate, key: str, context: Mapping[str, Any]) -> str:
    source = getattr(template, key)
    # Every rendering has a budget (validation and preview too); inside shared_rendering() the
    # block's budget is spent instead of a fresh one.
    token = _BUDGET.set(_BUDGET.get() or _Budget(_LIMITS))
    try:
        # A `key: |` block scalar ends in a newline that belongs to YAML, not to the prompt.
        return _generate_text(_compiled(source), context).rstrip("\n")
    except RenderLimitError as exc:
        raise RenderLimitError(f"template '{template.name}' ({key}): {exc}") from exc
    except RecursionError as exc:  # endless recursion: nesting ran out before the steps did
        raise RenderLimitError(
            f"template '{template.name}' ({key}): rendering stopped: macros, blocks or recursive "
            "loops call themselves too deeply, with no end in sight (their work is bounded by "
            "STUDIO_MAX_RENDER_STEPS, their nesting by Python's stack). Fix: give every "
            "recursion an end, e.g. an argument that counts down"
        ) from exc
    except SecurityError as exc:
        raise TemplateError(f"template '{template.name}' ({key}): {exc} {_SANDBOX_NOTE}") from exc
    except UndefinedError as exc:
        raise TemplateError(_undefined_message(template, key, exc, context)) from exc
    except Exception as exc:  # user-written template code can raise anything, e.g. 1 / 0
        raise TemplateError(
            f"template '{template.name}' ({key}): rendering failed: {type(exc).__name__}: {exc}. "
            "Fix: check the expressions against the row's values"
        ) from exc
    finally:
        _BUDGET.reset(token)


def _generate_text(compiled: jinja2.Template, context: Mapping[str, Any]) -> str:
    """The template's output, stopped as soon as it passes render_chars (not measured once
    built), chunk by chunk as the compiled template yields it."""
    budget = _current()
    chunks: list[str] = []
    size = 0
    output: Any = compiled.root_render_func(compiled.new_context(dict(context)))  # a generator
    try:
        for chunk in output:
            size += len(chunk)
            if size > budget.chars:
                raise _refusal("chars", budget.limits)
            chunks.append(chunk)
    except Exception:
        compiled.environment.handle_exception()  # re-raised, its traceback in template lines
    finally:
        output.close()
    return "".join(chunks)


def _undefined_message(
    template: PromptTemplate, key: str, exc: UndefinedError, context: Mapping[str, Any]
) -> str:
    match = re.fullmatch(r"'(.+)' is undefined", exc.message or "")
    if match is None:  # an attribute or item of a value, not a top-level column
        return (
            f"template '{template.name}' ({key}): {exc.message}. "
            "Fix: check the attribute or key name against the data"
        )
    return (
        f"template '{template.name}': variable '{match.group(1)}' is not a column of the data "
        f"(columns: {', '.join(sorted(context))}). Fix: rename the variable or map a column to it."
    )


def _answer_context(template: PromptTemplate, row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with label_map applied to every value the answer reads (raw str(v) -> word)."""
    context = dict(row)
    if template.label_map is None:
        return context
    for name in sorted(_variables_of(template.answer) & row.keys()):
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
    prompt = _render(template, "template", row)
    return prompt, _render(template, "answer", _answer_context(template, row))


def render_fields(template: PromptTemplate, row: Mapping[str, Any]) -> RenderedExample:
    """Render one row: prompt from the raw row, answer from label-mapped values, system if any."""
    prompt, answer = _prompt_and_answer(template, row)
    system = None if template.system is None else _render(template, "system", row)
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


def parse_template(text: str, source: str = "<text>") -> PromptTemplate:
    """A template from YAML text; every problem is a TemplateError naming source and key."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" on line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise TemplateError(
            f"{source}: YAML syntax error{where}: {problem}. Fix: check the indentation, and quote "
            "values that start with '{' or contain ': '"
        ) from exc
    if not isinstance(data, dict):
        raise TemplateError(
            f"{source}: a template is a YAML mapping of keys (name, template, ...), not "
            f"{type(data).__name__}. Fix: write one `key: value` per line, e.g. name: my-template"
        )
    unknown = [key for key in data if key not in PromptTemplate.model_fields]
    if unknown:  # checked here too because non-text keys (`1: x`) cannot be keyword arguments
        allowed = ", ".join(PromptTemplate.model_fields)
        raise TemplateError(
            "\n".join(f"{source}: unknown key '{key}'; allowed: {allowed}" for key in unknown)
        )
    token = _SOURCE.set(source)
    try:
        return PromptTemplate(**data)
    finally:
        _SOURCE.reset(token)


def _read(path: Path) -> PromptTemplate:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateError(f"{path}: no such template file. Fix: check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"{path}: cannot read it as UTF-8 text ({exc})") from exc
    return parse_template(text, source=str(path))


def _library_files(library: Path) -> list[Path]:
    return sorted(library.glob("*.yaml")) if library.is_dir() else []


def _read_library_file(path: Path) -> PromptTemplate:
    template = _read(path)
    # Lookup by name opens <name>.yaml, so a file must be called what its template is called.
    if template.name != path.stem:
        raise TemplateError(
            f"{path}: name '{template.name}' does not match the file name. Fix: set "
            f"name: {path.stem}, or rename the file to {template.name}.yaml"
        )
    return template


def load_template(spec: str | Path, library: Path = PROMPTS_DIR) -> PromptTemplate:
    """A template from a .yaml or .yml path, or by name from the library (library/<name>.yaml)."""
    text = str(spec)
    if isinstance(spec, Path) or text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text:
        if not text.endswith((".yaml", ".yml")):  # never read an arbitrary file as a template
            raise TemplateError(
                f"{text}: not a template file (template files end in .yaml or .yml). Fix: give "
                "a template name from the library or the path of a .yaml template file"
            )
        return _read(Path(spec))
    path = library / f"{text}.yaml"
    if NAME_PATTERN.fullmatch(text) and path.is_file():
        return _read_library_file(path)
    available = ", ".join(path.stem for path in _library_files(library)) or "none"
    raise TemplateError(
        f"no template named {text!r} in {library} (available: {available}). "
        "Fix: use one of these names, or give the path of a .yaml file"
    )


def list_templates(library: Path = PROMPTS_DIR) -> list[PromptTemplate]:
    """Every template in the library, sorted by name; a broken file raises naming it."""
    templates = [_read_library_file(path) for path in _library_files(library)]
    return sorted(templates, key=lambda template: template.name)


def save_template(
    template: PromptTemplate, library: Path = PROMPTS_DIR, overwrite: bool = True
) -> Path:
    """Write library/<name>.yaml atomically; returns its path."""
    # The name pattern admits no '/' and no leading '.', so the file stays inside the library.
    if not NAME_PATTERN.fullmatch(template.name):
        raise TemplateError(f"template name {template.name!r} is not a valid file name")
    target = library / f"{template.name}.yaml"
    if not overwrite and target.exists():
        raise TemplateError(
            f"{target} already exists. Fix: choose another name, or save with overwrite"
        )
    library.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, template.to_yaml())
    return target


def _write_atomically(target: Path, text: str) -> None:
    # Readers (another tab, a running comparison) see the old file or the new one, never half.
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)  # mkstemp makes 0600; a library file is shared like source code
        os.replace(temp, target)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
