"""The errors templates raise: TemplateError for any problem, RenderLimitError for a bound."""

from __future__ import annotations


class TemplateError(ValueError):
    """A template that fails to load, validate or render; the message says where, and the fix."""


class RenderLimitError(TemplateError):
    """A rendering stopped for the work or size it would take; the message names the setting."""
