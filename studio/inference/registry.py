"""The one place a model spec becomes a backend, as one `get_model` resolves any name in llm.

A served spec (`openai:MODEL@URL`) opens the HTTP backend; every other spec (a bundled alias, a
Hub id, a folder, a .gguf file, an adapter) is a local model the manager loads and caches. The
comparison engine and the Playground ask `ModelBackends` and never branch on the kind of spec
themselves; the hosting policy is applied here, once, for every way a model is named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from studio.hosting import HostingPolicy
from studio.inference.backends import InferenceBackend, LocalBackend, open_served
from studio.inference.openai_backend import ServedModelError
from studio.models.loading import LoadRequest, Progress, check_available
from studio.models.manager import ModelManager
from studio.models.served import is_served_spec
from studio.settings import Settings
from studio.templates import PromptTemplate


class ModelBackends:
    """Resolves model specs to backends under one hosting policy."""

    def __init__(self, models: ModelManager, policy: HostingPolicy) -> None:
        self.models = models
        self.policy = policy

    @property
    def settings(self) -> Settings:
        return self.models.settings

    def open(
        self, spec: str, quantization: str = "none", progress: Progress | None = None
    ) -> InferenceBackend:
        """The backend for `spec`: a served model's client (nothing is contacted yet), or the
        local model loaded (or reused) by the manager. Quantization applies to local models
        only; a served model runs as its server loaded it."""
        if is_served_spec(spec):
            return open_served(spec, self.policy)
        self.policy.check_model_spec(spec)
        return LocalBackend(self.models.get(LoadRequest(spec, quantization=quantization), progress))

    def is_ready(self, spec: str, quantization: str = "none") -> bool:
        """Whether `open` returns at once: a served model, or a local one already in memory."""
        return is_served_spec(spec) or self.models.is_loaded(LoadRequest(spec, quantization))

    def check(
        self, specs: Iterable[str], scoring: str, templates: Sequence[PromptTemplate]
    ) -> None:
        """Before a comparison stores anything: every spec passes the policy; every local model
        can be found (nothing is loaded); every served model's server answers and accepts the
        key and, for log-likelihood scoring, returns prompt log-probabilities and is given
        completion-mode templates. Each server is probed once."""
        for spec in dict.fromkeys(specs):
            if is_served_spec(spec):
                self._check_served(spec, scoring, templates)
            else:
                self.policy.check_model_spec(spec)
                check_available(spec, self.settings)

    def _check_served(self, spec: str, scoring: str, templates: Sequence[PromptTemplate]) -> None:
        backend = open_served(spec, self.policy)
        backend.check()
        if scoring != "loglik":
            return
        chat = [t.name for t in templates if t.mode == "chat"]
        if chat:
            raise ServedModelError(
                f"log-likelihood scoring of the served model {backend.spec} needs completion-mode "
                f"templates, and {', '.join(chat)} is in chat mode: the server applies its chat "
                "template only when it generates, so choices cannot be scored after it. Fix: use "
                "a completion-mode template, or generation scoring (scoring: generate)."
            )
        backend.require_prompt_logprobs()
