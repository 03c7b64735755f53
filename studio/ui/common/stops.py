"""Per-session stop signals for streamed work, so one user's Stop never stops another's; and the
Stop button that reaches them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import gradio as gr


class StopRegistry:
    """Maps a browser session to the stop event of the work it is running."""

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def begin(self, session: str | None) -> threading.Event:
        event = threading.Event()
        with self._lock:
            self._events[session or ""] = event
        return event

    def stop(self, session: str | None) -> bool:
        """Signal the session's running work; False when nothing was running."""
        with self._lock:
            event = self._events.get(session or "")
        if event is None:
            return False
        event.set()
        return True

    def end(self, session: str | None, event: threading.Event) -> None:
        with self._lock:
            if self._events.get(session or "") is event:
                del self._events[session or ""]

    @contextmanager
    def running(self, session: str | None) -> Iterator[threading.Event]:
        """The session's stop event while the block runs; forgotten after, however it ends."""
        event = self.begin(session)
        try:
            yield event
        finally:
            self.end(session, event)


def wire_stop(button: gr.Button, fn: Callable[..., Any], outputs: Any, **api: Any) -> None:
    """Stop `fn` on click. Not queued: a stop must get through while this session's work holds
    the queue slot."""
    button.click(fn, None, outputs, queue=False, **api)
