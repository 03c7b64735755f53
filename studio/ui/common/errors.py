"""How an engine's error reaches the user: a pop-up, a notice next to the button pressed, and the
log as well when it is not an error a user can act on."""

from __future__ import annotations

import logging

import gradio as gr


def user_error(exc: BaseException) -> gr.Error:
    """The pop-up for an error the user can act on: the engine's message, nothing more."""
    return gr.Error(str(exc))


def notice(exc: BaseException) -> str:
    """The error as a notice next to the button pressed."""
    return f"⚠ {exc}"


def log_unexpected(
    log: logging.Logger,
    exc: BaseException,
    expected: tuple[type[BaseException], ...],
    message: str,
    *args: object,
) -> None:
    """Log `exc` with its traceback unless it is one of the `expected` errors (a user's)."""
    if not isinstance(exc, expected):
        log.exception(message, *args, exc_info=exc)
