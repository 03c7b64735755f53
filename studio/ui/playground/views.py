"""What the Playground shows, without gradio: an exchange's figures, the history table, and the
controls' values when a past exchange is reloaded."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from studio.playground.engine import Finished
from studio.store.records import ExchangeRecord, ExchangeSummary

HISTORY_COLUMNS = ["id", "when", "model", "quant", "message", "new tokens", "latency s", "finish"]


def stats_markdown(finished: Finished) -> str:
    r = finished.result
    first = f"{r.first_token_s * 1000:.0f} ms" if r.first_token_s is not None else "-"
    if r.prompt_tokens is None or r.completion_tokens is None:  # a served model that did not say
        tokens, rate = "token counts not reported by the server", ""
    else:
        tokens = f"{r.prompt_tokens} prompt + {r.completion_tokens} new tokens"
        speed = r.completion_tokens / r.latency_s if r.latency_s > 0 else 0.0
        rate = f" ({speed:.1f} tok/s)"
    return (
        f"**#{finished.exchange_id}** · {tokens} · {r.latency_s:.2f} s{rate}"
        f" · first token {first} · seed {r.seed} · finish: {r.finish_reason}"
    )


def history_rows(items: Sequence[ExchangeSummary]) -> list[list[Any]]:
    """One row of HISTORY_COLUMNS per exchange, as listed (newest first)."""
    return [
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
        for item in items
    ]


def restored_settings(record: ExchangeRecord) -> tuple[Any, ...]:
    """The controls as the exchange was sent: model, quantization, mode, system prompt,
    temperature, top-p, top-k, max new tokens, repetition penalty, stop strings, seed."""
    p = record.parameters
    return (
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
    )


def reloaded_note(conversation_id: str, exchange_id: int, turns: int) -> str:
    return (
        f"Reloaded conversation `{conversation_id[:8]}` up to exchange "
        f"#{exchange_id} ({turns} turns). Sending continues it."
    )
