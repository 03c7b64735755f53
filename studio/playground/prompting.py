"""Turn a conversation into the exact text a model sees: its chat template, or plain completion."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

Mode = Literal["chat", "completion"]


def choose_mode(requested: str, tokenizer: Any) -> Mode:
    """'auto' is chat when the tokenizer has a chat template (instruct models), else completion."""
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if requested == "auto":
        return "chat" if has_template else "completion"
    if requested == "chat" and not has_template:
        raise ValueError(
            "This model has no chat template (it is a base model), so chat mode cannot format the "
            "conversation. Fix: choose completion mode (or auto)."
        )
    if requested not in ("chat", "completion"):
        raise ValueError(f"mode '{requested}' is not one of auto, chat, completion.")
    return requested  # type: ignore[return-value]


def conversation_prompt(
    tokenizer: Any,
    mode: Mode,
    system_prompt: str | None,
    history: Sequence[dict[str, str]],
    user_message: str,
) -> str:
    """The full prompt string for the next model turn.

    Chat mode applies the model's own chat template with a generation prompt. Completion mode
    treats the conversation as one document the model continues: the system prompt, then every
    earlier prompt and completion joined as written, then the new text.
    """
    if mode == "chat":
        messages: list[dict[str, str]] = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.extend({"role": m["role"], "content": m["content"]} for m in history)
        messages.append({"role": "user", "content": user_message})
        return str(
            tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        )
    parts = [system_prompt.rstrip() + "\n\n"] if system_prompt else []
    parts.extend(m["content"] for m in history)
    parts.append(user_message)
    return "".join(parts)
