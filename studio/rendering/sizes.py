"""Upper estimates of what a template operation would build, found from its arguments before
it runs: a value's text, printf and str.format widths, joins, str methods, calls, operators."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, ItemsView, Iterable, Iterator, KeysView, Mapping, ValuesView
from itertools import chain
from typing import TYPE_CHECKING, Any

from jinja2.runtime import Undefined
from jinja2.utils import Namespace, generate_lorem_ipsum
from markupsafe import Markup

if TYPE_CHECKING:  # budget.py imports this module at run time
    from studio.rendering.budget import Budget

_DONE = object()


def size_of(
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


def depth(value: Any, limit: int) -> int:
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


def spec_widths(format_spec: str) -> int:
    """Every number in a str.format spec, added up: no field pads beyond them."""
    return sum(_number(n) for n in _SPEC_NUMBER.findall(format_spec))


def printf_size(budget: Budget, fmt: str | bytes, values: Any) -> int:
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


def join_size(budget: Budget, items: Any, separator: int) -> int:
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
    budget: Budget, text: str | bytes, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
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
        return join_size(budget, args[0] if args else None, n)
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


def call_size(
    budget: Budget, obj: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
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


def too_big(operator: str, left: Any, right: Any, max_bits: int) -> bool:
    """Integer arithmetic past max_bits (texts and lists are sized in characters instead)."""
    if not (isinstance(left, int) and isinstance(right, int)):
        return False
    if operator == "**":
        return abs(left) > 1 and left.bit_length() * abs(right) > max_bits
    if operator == "*":
        return left.bit_length() + right.bit_length() > max_bits
    return False


def binop_size(operator: str, left: Any, right: Any) -> Callable[[Budget], int] | None:
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
        return lambda budget: printf_size(budget, left, right)
    return None
