"""Inference backends: what the Playground and comparison grids run a model through.

A backend streams one answer, generates for many prompts, and scores answer choices by
log-likelihood. Two implement it: `LocalBackend`, the model loaded here with transformers (the
existing functions, called directly: nothing is added on the hot path), and `OpenAIBackend`, a
model served over an OpenAI-compatible HTTP API (spec `openai:MODEL@BASE_URL`, see
studio.models.served). Prompts arrive fully built; `prompt_format` is what builds chat
prompts (the local tokenizer's chat template, or the messages array a server receives).
Which backend a spec gets is decided in one place: studio.inference.registry.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from studio.hosting import HostingPolicy
from studio.inference.batch_generation import Generated, generate_batch
from studio.inference.generation import GenerationResult, stream_generate
from studio.inference.openai_backend import OpenAIBackend
from studio.inference.params import SamplingParams
from studio.inference.scoring import ScoredExample, score_choices
from studio.models.served import parse_served_spec

if TYPE_CHECKING:
    from studio.models.loading import LoadedModel


class InferenceBackend(Protocol):
    """A model the studio can prompt. `mode` is "chat" or "completion" for every call."""

    kind: str  # "local" | "served"
    spec: str  # the model spec, as runs and exchanges record it
    location: str  # a folder or hub id, or the server's base URL

    @property
    def prompt_format(self) -> Any:
        """Passed as the tokenizer to build_prompt: applies the chat template of chat prompts."""

    def stream(
        self, prompt: str, mode: str, params: SamplingParams, stop: threading.Event | None = None
    ) -> Iterator[str | GenerationResult]: ...

    def generate(
        self,
        prompts: Sequence[str],
        mode: str,
        params: SamplingParams,
        *,
        batch_size: int = 8,
        stop: threading.Event | None = None,
    ) -> Iterator[Generated]: ...

    def score(
        self,
        prompts: Sequence[str],
        continuations: Sequence[Sequence[str]],
        mode: str,
        *,
        batch_rows: int = 16,
        stop: threading.Event | None = None,
    ) -> Iterator[ScoredExample]: ...


class LocalBackend:
    """A model loaded in this process (bundled, hub, folder, GGUF or adapter)."""

    kind = "local"

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        self.spec = loaded.source.spec
        self.location = loaded.location

    @property
    def prompt_format(self) -> Any:
        return self.loaded.tokenizer

    def stream(
        self, prompt: str, mode: str, params: SamplingParams, stop: threading.Event | None = None
    ) -> Iterator[str | GenerationResult]:
        return stream_generate(self.loaded, prompt, params, stop, _special_tokens(mode))

    def generate(
        self,
        prompts: Sequence[str],
        mode: str,
        params: SamplingParams,
        *,
        batch_size: int = 8,
        stop: threading.Event | None = None,
    ) -> Iterator[Generated]:
        return generate_batch(
            self.loaded,
            prompts,
            params,
            batch_size=batch_size,
            add_special_tokens=_special_tokens(mode),
            stop=stop,
        )

    def score(
        self,
        prompts: Sequence[str],
        continuations: Sequence[Sequence[str]],
        mode: str,
        *,
        batch_rows: int = 16,
        stop: threading.Event | None = None,
    ) -> Iterator[ScoredExample]:
        return score_choices(
            self.loaded,
            prompts,
            continuations,
            batch_rows=batch_rows,
            add_special_tokens=_special_tokens(mode),
            stop=stop,
        )


def _special_tokens(mode: str) -> bool:
    # Chat templates already write BOS and role markers; plain text needs the tokenizer's BOS.
    return mode == "completion"


def open_served(spec: str, policy: HostingPolicy) -> OpenAIBackend:
    """The HTTP backend of a served-model spec (checked against the hosting policy; nothing is
    contacted yet)."""

    return OpenAIBackend(parse_served_spec(spec), policy)
