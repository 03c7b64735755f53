"""Inference backends: what the Playground and comparison grids run a model through.

A backend streams one answer, generates for many prompts, and scores answer choices by
log-likelihood. Two implement it: `LocalBackend`, the model loaded here with transformers (the
existing functions, called directly: nothing is added on the hot path), and `OpenAIBackend`, a
model served over an OpenAI-compatible HTTP API (spec `openai:MODEL@BASE_URL`, see
studio.models.served). Prompts arrive fully built; `prompt_format` is what builds chat
prompts (the local tokenizer's chat template, or the messages array a server receives).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from studio.inference.batch_generation import Generated, generate_batch
from studio.inference.generation import GenerationResult, stream_generate
from studio.inference.openai_backend import OpenAIBackend, ServedModelError
from studio.inference.params import SamplingParams
from studio.inference.scoring import ScoredExample, score_choices
from studio.models.loading import LoadRequest
from studio.models.served import is_served_spec, parse_served_spec

if TYPE_CHECKING:
    from studio.hosting import HostingPolicy
    from studio.inference.openai_backend import OpenAIBackend
    from studio.models.loading import LoadedModel, Progress
    from studio.models.manager import ModelManager
    from studio.templates import PromptTemplate


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


def open_backend(
    spec: str,
    models: ModelManager,
    policy: HostingPolicy,
    quantization: str = "none",
    progress: Progress | None = None,
) -> InferenceBackend:
    """A served spec's HTTP backend, or the local model loaded (or reused) by the manager.

    Quantization applies to local models only; a served model runs as its server loaded it.
    The hosting policy decides which specs a visitor may open.
    """
    if is_served_spec(spec):
        return open_served(spec, policy)
    policy.check_model_spec(spec)

    return LocalBackend(models.get(LoadRequest(spec, quantization=quantization), progress))


def check_served_models(
    specs: Iterable[str],
    scoring: str,
    templates: Sequence[PromptTemplate],
    policy: HostingPolicy,
) -> None:
    """Before a comparison stores anything: every served model's spec parses, its server answers
    and accepts the key, and, for log-likelihood scoring, returns prompt log-probabilities and is
    given completion-mode templates. Each server is probed once per run."""

    for spec in dict.fromkeys(s for s in specs if is_served_spec(s)):
        backend = open_served(spec, policy)
        backend.check()
        if scoring != "loglik":
            continue
        chat = [t.name for t in templates if t.mode == "chat"]
        if chat:
            raise ServedModelError(
                f"log-likelihood scoring of the served model {backend.spec} needs completion-mode "
                f"templates, and {', '.join(chat)} is in chat mode: the server applies its chat "
                "template only when it generates, so choices cannot be scored after it. Fix: use "
                "a completion-mode template, or generation scoring (scoring: generate)."
            )
        backend.require_prompt_logprobs()
