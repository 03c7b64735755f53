"""The sandboxed Jinja2 environment every template renders in: the budget's hooks on calls,
look-ups, operators and str.format, the bounded filters, and the cache of compiled templates."""

from __future__ import annotations

import functools
import types
from collections.abc import Callable
from string import Formatter
from typing import Any

import jinja2
from jinja2 import StrictUndefined, meta, nodes
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext, Macro
from jinja2.sandbox import (
    ImmutableSandboxedEnvironment,
    SandboxedEscapeFormatter,
    SandboxedFormatter,
)
from markupsafe import Markup

from studio.rendering.budget import BUDGET, Budget, Folding, current
from studio.rendering.filters import bounded_filter, bounded_test
from studio.rendering.sizes import binop_size, call_size, spec_widths, too_big
from studio.rendering.transform import HOOKS, Bounding, Counted, output


class _BoundedFields(Formatter):
    """str.format with each replacement field sized before it is formatted: its value plus
    every number in its format spec (so '{:>999999999}' is refused, not padded)."""

    budget: Budget
    total = 0
    escapes = 1

    def convert_field(self, value: Any, conversion: str | None) -> Any:
        if conversion in ("r", "a"):  # ascii() escapes every non-ASCII character too
            size = self.budget.size(value, nested=True)
            self.budget.check(size * 10 if conversion == "a" else size)
        return super().convert_field(value, conversion)

    def format_field(self, value: Any, format_spec: str) -> Any:
        widths = spec_widths(format_spec)
        self.total += (self.budget.size(value) + widths) * self.escapes
        self.budget.check(self.total)
        return super().format_field(value, format_spec)


class _BoundedFormatter(_BoundedFields, SandboxedFormatter):
    pass


class _BoundedEscapeFormatter(_BoundedFields, SandboxedEscapeFormatter):
    escapes = 6


class _Sandbox(ImmutableSandboxedEnvironment):
    # The sandbox blocks attribute escapes but not work: every rendering has a Budget, and
    # these hooks spend it. Integer arithmetic stays bounded in bits, as before:
    # '{{ 3 ** (10 ** 9) }}' would hang a shared (Spaces) studio.
    intercepted_binops = frozenset({"*", "**", "+", "%"})
    max_result_bits = 1 << 16

    def __init__(self, **options: Any) -> None:
        super().__init__(finalize=output, **options)
        self.filters = {name: bounded_filter(name, f) for name, f in self.filters.items()}
        self.tests = {name: bounded_test(f) for name, f in self.tests.items()}
        self.filters.update(HOOKS)

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
        Bounding(self).visit(source)
        token = BUDGET.set(Folding())
        try:
            return super()._generate(source, name, filename, defer_init=defer_init)
        finally:
            BUDGET.reset(token)

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        budget = current()
        budget.step()
        if isinstance(obj, LoopContext) and args:  # loop(children) in a recursive for-loop
            outer = getattr(obj, "_iterable", None)
            args = (Counted(args[0], outer.text if isinstance(outer, Counted) else 0), *args[1:])
        elif not isinstance(obj, Macro):  # a macro's result is sized when it returns
            size, args = call_size(budget, obj, args, kwargs)
            if size is not None:
                budget.check(size)
        return budget.produced(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        current().step()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        current().step()
        return super().getitem(obj, argument)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if too_big(operator, left, right, self.max_result_bits):
            raise SecurityError(
                f"'{operator}' on these values builds a result too large to render."
            )
        size = binop_size(operator, left, right)
        if size is None:
            return super().call_binop(context, operator, left, right)
        budget = current()
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
            formatter.budget = current()
            formatter.total = len(text)
            return type(text)(formatter.vformat(text, args, kwargs))

        return functools.update_wrapper(bounded_format, value)


ENV = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)


@functools.lru_cache(maxsize=512)
def compiled(source: str) -> jinja2.Template:
    # Comparisons render the same few sources thousands of times; compiling is the slow part.
    return ENV.from_string(source)


def parse_source(source: str) -> nodes.Template:
    """The template as written, without the budget's hooks: what validation inspects."""
    return ENV.parse(source)


@functools.lru_cache(maxsize=512)
def variables_of(source: str) -> frozenset[str]:
    """The names a template reads from its context (a row's columns)."""
    return frozenset(meta.find_undeclared_variables(ENV.parse(source)))
