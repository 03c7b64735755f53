"""Jinja's filters and tests made steps of the budget: each filter that could build a big
result from small arguments has an estimate of that result's size, refused before it runs."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from jinja2.runtime import Undefined

from studio.rendering.budget import Budget, current
from studio.rendering.sizes import depth, join_size, printf_size


# Filters that could build a big result from small arguments, with an upper estimate of the
# result's size from those arguments (the value first, as the template passes it).
def _same(budget: Budget, value: Any, *_: Any, **__: Any) -> int:
    return budget.size(value)


def _triple(budget: Budget, value: Any, *_: Any, **__: Any) -> int:
    return 3 * budget.size(value)


def _escaped(budget: Budget, value: Any, *_: Any, **__: Any) -> int:
    return 6 * budget.size(value)


def _center(budget: Budget, value: Any, width: Any = 80, *_: Any, **__: Any) -> int:
    return max(budget.size(value), width if isinstance(width, int) else 0)


def _indent(budget: Budget, s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    n = budget.size(s)
    lines = s.count("\n") + 1 if isinstance(s, str) else n + 1
    pad = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
    return n + lines * max(pad, 0)


def _wordwrap(
    budget: Budget,
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


def _replace(budget: Budget, s: Any, old: Any, new: Any, count: Any = None) -> int:
    n = budget.size(s)
    found = s.count(old) if isinstance(s, str) and isinstance(old, str) and old else n + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    return n + found * max(0, budget.size(new) - budget.size(old))


def _join(budget: Budget, value: Any, d: Any = "", *_: Any, **__: Any) -> int:
    return join_size(budget, value, budget.size(d))


def _format(budget: Budget, value: Any, *args: Any, **kwargs: Any) -> int:
    if not isinstance(value, str):
        budget.check(budget.size(value))
        value = str(value)
    return printf_size(budget, value, kwargs or args)


def _fill(budget: Budget, value: Any, count: Any, fill_with: Any) -> int:
    """batch and slice: `count` lists, or a list padded with up to `count` fill values."""
    extra = budget.size(fill_with, nested=True) + 2 if fill_with is not None else 0
    return budget.size(value) + (max(count, 0) * (extra + 4) if isinstance(count, int) else 0)


def _batch(budget: Budget, value: Any, linecount: Any, fill_with: Any = None) -> int:
    return _fill(budget, value, linecount, fill_with)


def _slice(budget: Budget, value: Any, slices: Any, fill_with: Any = None) -> int:
    return _fill(budget, value, slices, fill_with)


def _sum(budget: Budget, iterable: Any, attribute: Any = None, start: Any = 0) -> int:
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


def _list(budget: Budget, value: Any) -> int:
    return 5 * len(value) if isinstance(value, str) else budget.size(value)


def _tojson(budget: Budget, value: Any, indent: Any = None) -> int:
    n = budget.size(value)
    pad = len(indent) if isinstance(indent, str) else indent if isinstance(indent, int) else 0
    return 6 * n + (n * max(pad, 0) * depth(value, budget.chars) if pad else 0)


def _pprint(budget: Budget, value: Any) -> int:
    n = budget.size(value, nested=True)
    return 2 * n + n * depth(value, budget.chars)


def _urlize(
    budget: Budget,
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


def _xmlattr(budget: Budget, d: Any, *_: Any, **__: Any) -> int:
    return 6 * budget.size(d) + (8 * len(d) if isinstance(d, Mapping) else 0)


def _urlencode(budget: Budget, value: Any) -> int:
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


def bounded_filter(name: str, func: Callable[..., Any]) -> Callable[..., Any]:
    """func as a step: a lazy value becomes a list (counted), a big result is refused from its
    estimate before func runs, and what func returns is sized. wraps() keeps jinja_pass_arg."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
    estimate = _FILTER_SIZES.get(name)

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        if len(args) > skip and isinstance(args[skip], Iterator):
            args = (*args[:skip], budget.materialize(args[skip]), *args[skip + 1 :])
        if estimate is not None and len(args) > skip:
            budget.check(estimate(budget, *args[skip:], **kwargs))
        return budget.produced(func(*args, **kwargs))

    return bounded


def bounded_test(func: Any) -> Callable[..., Any]:
    """func as a step: a test builds nothing, but runs in loops like any call."""

    @functools.wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        current().step()
        return func(*args, **kwargs)

    return bounded
