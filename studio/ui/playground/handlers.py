"""Playground handlers: one exchange streamed through services.playground, stoppable per
session; the history of exchanges from the store, and reloading one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr

from studio.models.errors import ModelError
from studio.playground.engine import ChatRequest, Delta, Finished, Status, conversation_messages
from studio.services import Services
from studio.ui.common.errors import user_error
from studio.ui.common.stops import StopRegistry
from studio.ui.playground.form import sampling_params
from studio.ui.playground.views import (
    history_rows,
    reloaded_note,
    restored_settings,
    stats_markdown,
)


def new_conversation() -> dict[str, Any]:
    """A conversation with no turns yet; it gets its id when the first message is sent."""
    return {"id": None, "messages": []}


class PlaygroundHandlers:
    """One per app; `respond` streams (conversation, chat, message box, status, stats, prompt)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.stops = StopRegistry()

    # Public as /chat: gradio shows a handler's docstring as the endpoint's description, and
    # its parameter names as the API's; the streamed values fill PlaygroundTab.outputs.
    def respond(
        self,
        user_text: str | None,
        conv: dict[str, Any],
        model_spec: str | None,
        quant: str,
        chat_mode: str,
        system: str | None,
        temp: float,
        p: float,
        k: float,
        max_new: float,
        rep: float,
        stop_text: str | None,
        seed_value: Any,
        request: gr.Request,
    ) -> Iterator[tuple[Any, ...]]:
        try:
            params = sampling_params(temp, p, k, max_new, rep, stop_text, seed_value)
        except ValueError as exc:
            raise user_error(exc) from None
        conv = {"id": conv.get("id") or str(uuid.uuid4()), "messages": list(conv["messages"])}
        try:
            chat = ChatRequest(
                model=model_spec or self.services.settings.default_model,
                user_message=user_text or "",
                params=params,
                quantization=quant,
                mode=chat_mode,
                system_prompt=system or "",
                history=tuple(conv["messages"]),
                conversation_id=conv["id"],
            )
        except ValueError as exc:
            raise user_error(exc) from None
        yield from self._stream(chat, conv, request.session_hash)

    def _stream(
        self, chat: ChatRequest, conv: dict[str, Any], session: str | None
    ) -> Iterator[tuple[Any, ...]]:
        shown = [*conv["messages"], {"role": "user", "content": chat.user_message}]
        yield conv, [*shown, {"role": "assistant", "content": ""}], "", "", "", gr.skip()
        with self.stops.running(session) as stop:
            try:
                for item in self.services.playground.stream(chat, stop):
                    if isinstance(item, Status):
                        yield conv, gr.skip(), "", item.message, gr.skip(), gr.skip()
                    elif isinstance(item, Delta):
                        reply = {"role": "assistant", "content": item.text}
                        yield conv, [*shown, reply], "", "", gr.skip(), gr.skip()
                    elif isinstance(item, Finished):
                        reply = {"role": "assistant", "content": item.record.response}
                        conv["messages"] = [*shown, reply]
                        stats = stats_markdown(item)
                        yield conv, conv["messages"], "", "", stats, item.record.prompt_text
            except (ModelError, ValueError) as exc:
                raise user_error(exc) from None

    def request_stop(self, request: gr.Request) -> None:
        self.stops.stop(request.session_hash)

    # --- history ------------------------------------------------------------------------------

    # Public as /history (no docstring: it would become the endpoint's description). The table
    # lists the newest first; `search` matches messages and responses.
    def refresh(self, search: str = "") -> list[list[Any]]:
        return history_rows(self.services.store.list_exchanges(limit=100, search=search or None))

    def reload(self, rows: Any, evt: gr.SelectData) -> tuple[Any, ...]:
        row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
        return self.restore(int(rows.iloc[row, 0]))

    def restore(self, exchange_id: int) -> tuple[Any, ...]:
        """(conversation, chat, *the controls as sent, prompt, note) of a stored exchange."""
        record = self.services.store.get_exchange(exchange_id)
        if record is None:
            raise gr.Error(f"Exchange #{exchange_id} is no longer in the store.")
        records = self.services.store.conversation(record.conversation_id, upto_id=exchange_id)
        messages = conversation_messages(records)
        conv = {"id": record.conversation_id, "messages": messages}
        note = reloaded_note(record.conversation_id, exchange_id, len(records))
        return (conv, messages, *restored_settings(record), record.prompt_text, note)
