"""Reading a served model's answers: choices, text pieces, token counts, echoed logprobs.

Owns what studio.inference.openai_backend makes of an OpenAI-compatible server's JSON: the
choice asked for, the text of a chat or completion answer (whole or streamed), usage counts,
the finish reason, and the log-probabilities of an echoed prompt summed over a continuation.
An answer that lacks what is needed raises ServedModelError saying what is missing. Also the
chat format a served model is prompted with (the messages array, as JSON).
"""

from __future__ import annotations

import json
from typing import Any

from studio.inference.served_errors import ServedModelError


class ServedChatFormat:
    """What `build_prompt` renders chat turns with for a served model, in place of a tokenizer.

    The server applies the model's chat template itself, so the exact prompt the studio sends for
    a chat turn is the messages array: that JSON is the prompt text recorded, and it is parsed
    back into the request body, so what is stored is what was sent.
    """

    chat_template = "applied by the server"

    def apply_chat_template(self, messages: list[dict[str, str]], **_: Any) -> str:
        return json.dumps(messages, ensure_ascii=False, indent=1)


def prompt_messages(prompt: str) -> list[dict[str, str]]:
    """The messages array a served chat prompt (ServedChatFormat's JSON) stands for."""
    messages = json.loads(prompt)
    if not isinstance(messages, list):
        raise ValueError("a served chat prompt must be a JSON list of messages")
    return messages


def choice(data: Any, index: int) -> dict[str, Any]:
    """The answer's choice number `index` (by its `index` field, else by position)."""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list):
        raise ServedModelError("its answer has no `choices` list.")
    for item in choices:
        if item.get("index", 0) == index:
            return dict(item)
    if index < len(choices):
        return dict(choices[index])
    raise ServedModelError(f"its answer has no choice number {index}.")


def count(usage: dict[str, Any], key: str) -> int | None:
    """A token count from the server's `usage`, or None where it sent none. A stream's usage comes
    in its last event, so a stopped stream has none; recording 0 would be a wrong number."""
    value = usage.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def piece(choice: dict[str, Any], mode: str, key: str = "delta") -> str:
    """A choice's text: a chat `delta` (streamed) or `message`, or a completion's `text`."""
    if mode == "chat":
        return str((choice.get(key) or {}).get("content") or "")
    return str(choice.get("text") or "")


def finish_reason(reason: str) -> str:
    # The API says "stop" for an end of turn and for a stop sequence alike (a stop string the
    # studio cuts itself is told apart by the caller); anything else also ended the answer.
    return "length" if reason == "length" else "eos"


def echoed_logprobs(choice: dict[str, Any]) -> tuple[list[float | None], list[int]]:
    """token_logprobs and text_offset of an echoed prompt, checked to cover the text."""
    logprobs = choice.get("logprobs") or {}
    values, offsets = logprobs.get("token_logprobs"), logprobs.get("text_offset")
    if not isinstance(values, list) or not isinstance(offsets, list) or len(values) < 2:
        raise ServedModelError(
            "its /completions answer has no `logprobs.token_logprobs` and `text_offset` for the "
            "echoed prompt."
        )
    if len(offsets) != len(values) or not all(isinstance(v, (int, float)) for v in values[1:]):
        raise ServedModelError("its `logprobs` do not give one log-probability per prompt token.")
    return values, [int(o) for o in offsets]


def continuation_logprob(
    echoed: tuple[list[float | None], list[int]], prompt_chars: int, text_chars: int
) -> tuple[float, int, int]:
    """(sum of log-probs, tokens, prompt tokens) of the tokens that end after the prompt.

    A token straddling the prompt/continuation boundary counts for the continuation, so every
    character of the choice is scored. The generated token (max_tokens=1) is left out by counting
    only tokens that start inside the echoed text.
    """
    values, offsets = echoed
    total, n_tokens, prompt_tokens = 0.0, 0, 0
    ends = [*offsets[1:], None]
    for value, start, stop in zip(values, offsets, ends, strict=True):
        if start >= text_chars:
            break
        if stop is not None and stop <= prompt_chars:
            prompt_tokens += 1
            continue
        if value is None:
            raise ServedModelError("the first scored token has no log-probability.")
        total += float(value)
        n_tokens += 1
    return total, n_tokens, prompt_tokens
