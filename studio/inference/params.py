"""Sampling parameters, validated when built, shared by the Playground, comparisons and the CLI."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator


class SamplingParams(BaseModel):
    """How to decode. temperature 0 means greedy decoding (top-p/top-k are then ignored)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    temperature: float = Field(0.7, ge=0.0, le=5.0, description="0 = greedy; higher = more random.")
    top_p: float = Field(0.9, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int = Field(50, ge=0, le=10_000, description="Sample among the k likeliest; 0 = off.")
    max_new_tokens: int = Field(256, ge=1, le=8192, description="Upper bound on generated tokens.")
    repetition_penalty: float = Field(1.0, ge=0.5, le=3.0, description="1.0 = no penalty.")
    stop: tuple[str, ...] = Field((), description="Generation ends before any of these strings.")
    seed: int | None = Field(None, ge=0, le=2**32 - 1, description="Fixes sampling; None = random.")

    @field_validator("stop", mode="before")
    @classmethod
    def _split_stop(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part for part in value.split("\n")]
        if isinstance(value, (list, tuple)):
            return tuple(_unescape(part) for part in value if part != "")
        return value

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


def _unescape(text: str) -> str:
    # Stop strings are typed in a text box, one per line; "\n" written literally means a newline.
    return text.replace("\\n", "\n").replace("\\t", "\t")
