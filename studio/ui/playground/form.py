"""The Playground's sampling controls as SamplingParams. No gradio here: a value the params
refuse raises ValueError naming the setting, which the handlers show as a gr.Error."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from studio.inference.params import SamplingParams


def parse_seed(value: Any) -> int | None:
    """The seed box: blank for a random seed, else a whole number."""
    text = "" if value is None else str(value).strip()
    if not text:
        return None
    try:
        return int(float(text)) if float(text).is_integer() else int(text)
    except ValueError:
        raise ValueError(f"Invalid setting 'seed': '{text}' is not a whole number.") from None


def sampling_params(
    temperature: Any,
    top_p: Any,
    top_k: Any,
    max_new_tokens: Any,
    repetition_penalty: Any,
    stop: str | None,
    seed: Any,
) -> SamplingParams:
    """The controls' values as SamplingParams; stop strings one per line."""
    try:
        return SamplingParams(
            temperature=temperature,
            top_p=top_p,
            top_k=int(top_k),
            max_new_tokens=int(max_new_tokens),
            repetition_penalty=repetition_penalty,
            stop=tuple((stop or "").split("\n")),
            seed=parse_seed(seed),
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ValueError(f"Invalid setting '{first['loc'][0]}': {first['msg']}.") from None
