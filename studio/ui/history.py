"""History panel: past Playground exchanges, searchable; selecting one reloads its conversation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from studio.playground.engine import conversation_messages
from studio.services import Services

COLUMNS = ["id", "when", "model", "quant", "message", "new tokens", "latency s", "finish"]


def history_rows(services: Services, search: str = "") -> list[list[Any]]:
    rows = []
    for item in services.store.list_exchanges(limit=100, search=search or None):
        rows.append(
            [
                item.id,
                item.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                item.model_spec,
                item.quantization,
                item.preview,
                item.completion_tokens,
                round(item.latency_ms / 1000, 2),
                item.finish_reason,
            ]
        )
    return rows


@dataclass
class HistoryPanel:
    services: Services
    search: gr.Textbox
    refresh: gr.Button
    table: gr.Dataframe
    detail: gr.Markdown

    def connect(self, reload_outputs: list[Any], refresh_after: Any) -> None:
        """Wire refresh/search, and row selection → restore that conversation and its settings."""

        def refresh(search: str) -> list[list[Any]]:
            return history_rows(self.services, search)

        self.refresh.click(refresh, self.search, self.table, api_name="history")
        self.search.submit(refresh, self.search, self.table, api_visibility="private")
        refresh_after.then(refresh, self.search, self.table, api_visibility="private")

        def reload(rows: Any, evt: gr.SelectData) -> tuple[Any, ...]:
            row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
            exchange_id = int(rows.iloc[row, 0])
            return self.restore(exchange_id)

        self.table.select(
            reload, self.table, [*reload_outputs, self.detail], api_visibility="private"
        )

    def restore(self, exchange_id: int) -> tuple[Any, ...]:
        record = self.services.store.get_exchange(exchange_id)
        if record is None:
            raise gr.Error(f"Exchange #{exchange_id} is no longer in the store.")
        records = self.services.store.conversation(record.conversation_id, upto_id=exchange_id)
        messages = conversation_messages(records)
        p = record.parameters
        conv = {"id": record.conversation_id, "messages": messages}
        detail = (
            f"Reloaded conversation `{record.conversation_id[:8]}` up to exchange "
            f"#{exchange_id} ({len(records)} turns). Sending continues it."
        )
        return (
            conv,
            messages,
            record.model_spec,
            record.quantization,
            record.mode,
            record.system_prompt or "",
            p.get("temperature", 0.7),
            p.get("top_p", 0.9),
            p.get("top_k", 50),
            p.get("max_new_tokens", 256),
            p.get("repetition_penalty", 1.0),
            "\n".join(p.get("stop", [])),
            "" if p.get("seed") is None else str(p["seed"]),
            record.prompt_text,
            detail,
        )


def build_history_panel(services: Services) -> HistoryPanel:
    with gr.Accordion("History — every exchange is stored; select a row to reload it", open=True):
        with gr.Row():
            search = gr.Textbox(
                placeholder="Search messages and responses", show_label=False, scale=4
            )
            refresh = gr.Button("Refresh", scale=1)
        table = gr.Dataframe(
            value=lambda: history_rows(services),
            headers=COLUMNS,
            interactive=False,
            wrap=True,
            max_height=320,
            elem_id="playground-history",
        )
        detail = gr.Markdown("")
    return HistoryPanel(services, search, refresh, table, detail)
