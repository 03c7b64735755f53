"""Bounded Jinja2 rendering: user-written templates render in a sandbox where every rendering
has a budget of steps, seconds and characters set by the operator (STUDIO_MAX_RENDER_*).

Layout: errors (TemplateError, RenderLimitError), budget (limits, per-rendering budget,
refusals), sizes (estimates of a result's size before it is built), filters (Jinja's filters
and tests as budgeted steps), transform (the hooks added to each parsed template), sandbox (the
environment and the compiled-template cache). Nothing here knows about PromptTemplate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from studio.hosting import Limits
from studio.rendering.budget import (
    BUDGET,
    Budget,
    refusal,
    rendering_limits,
    set_limits,
    shared_rendering,
)
from studio.rendering.errors import RenderLimitError, TemplateError
from studio.rendering.sandbox import compiled, parse_source, variables_of
from studio.rendering.transform import INTERNAL_PREFIX

__all__ = [
    "INTERNAL_PREFIX",
    "RenderLimitError",
    "TemplateError",
    "configure_rendering",
    "parse_source",
    "render",
    "rendering_limits",
    "shared_rendering",
    "variables_of",
]


def configure_rendering(limits: Limits) -> None:
    """Bound every rendering from now on by these limits: the operator's STUDIO_MAX_RENDER_*
    settings, as HostingPolicy.limits. Until it is called, Limits() defaults hold."""
    set_limits(limits)
    compiled.cache_clear()  # constants folded at compile time were checked against the old ones


def render(source: str, context: Mapping[str, Any]) -> str:
    """source rendered with context in the bounded sandbox, spending the enclosing
    shared_rendering() budget or a fresh one. A bound passed raises RenderLimitError; anything
    else the template raises (SecurityError, UndefinedError, its own 1 / 0) passes through.

    The output is collected chunk by chunk as the compiled template yields it, and stopped as
    soon as it passes render_chars rather than measured once built. All in one function: this
    runs thousands of times per comparison, and each call layer shows in the benchmark."""
    budget = BUDGET.get() or Budget()
    token = BUDGET.set(budget)
    try:
        template = compiled(source)
        chunks: list[str] = []
        size = 0
        output: Any = template.root_render_func(template.new_context(dict(context)))
        try:
            for chunk in output:
                size += len(chunk)
                if size > budget.chars:
                    raise refusal("chars", budget.limits)
                chunks.append(chunk)
        except Exception:
            template.environment.handle_exception()  # re-raised, its traceback in template lines
        finally:
            output.close()
        return "".join(chunks)
    except RecursionError as exc:  # endless recursion: nesting ran out before the steps did
        raise RenderLimitError(
            "rendering stopped: macros, blocks or recursive loops call themselves too "
            "deeply, with no end in sight (their work is bounded by STUDIO_MAX_RENDER_STEPS, "
            "their nesting by Python's stack). Fix: give every recursion an end, e.g. an "
            "argument that counts down"
        ) from exc
    finally:
        BUDGET.reset(token)
