"""The hooks Jinja lacks, added to each parsed template before it compiles: for-loops count
their iterations, '~' sizes its parts, and set values and every {{ output }} are bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import jinja2
from jinja2 import nodes
from jinja2.nodes import EvalContext
from jinja2.runtime import Context, markup_join, str_join
from jinja2.utils import pass_context, pass_eval_context
from jinja2.visitor import NodeTransformer

from studio.rendering.budget import current

# The hooks are filters the rewrite inserts by name. A template could name them too; validation
# refuses names with this prefix, and each hook stays safe if called directly anyway.
INTERNAL_PREFIX = "_bounded"


class Counted:
    """A for-loop's iterable: each iteration is a step and builds the loop body's text."""

    __slots__ = ("items", "text")

    def __init__(self, items: Any, text: int) -> None:
        self.items = items
        self.text = text

    def __iter__(self) -> Iterator[Any]:
        budget = current()
        text = self.text
        for item in self.items:
            budget.step()
            if text:
                budget.build(text)
            yield item

    def __len__(self) -> int:  # loop.length, without draining the items first
        return len(self.items)


def _loop(items: Any, text: Any = 0) -> Counted:
    # Also reachable by name from a template ('x|_bounded_loop(-9)'): never a negative charge.
    return Counted(items, text if isinstance(text, int) and text > 0 else 0)


@pass_eval_context
def _concat(eval_ctx: EvalContext, parts: tuple[Any, ...]) -> str:
    """'~': each part sized before it becomes text (str() of a list of big texts is huge)."""
    budget = current()
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
    budget = current()
    budget.check(budget.size(value))
    return value


def _block_value(value: Any) -> Any:
    """{% set x %}...{% endset %}: the captured text is a value built."""
    return current().produced(value)


@pass_context
def output(context: Context, value: Any) -> Any:
    """Every {{ expression }} is sized before str() runs on it: str([big] * 9) is big."""
    return current().produced(value)


_LOOP, _CONCAT, _SET, _BLOCK = "_bounded_loop", "_bounded_concat", "_bounded_set", "_bounded_block"
# The filters the sandbox adds for Bounding's rewrite to call.
HOOKS: dict[str, Callable[..., Any]] = {
    _LOOP: _loop,
    _CONCAT: _concat,
    _SET: _set_value,
    _BLOCK: _block_value,
}


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


class Bounding(NodeTransformer):
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
