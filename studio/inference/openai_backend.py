"""The OpenAI-compatible HTTP backend: a model served by vLLM, TGI, `transformers serve` or an API.

Chat-mode prompts go to `/chat/completions` as messages (the server applies the model's chat
template), completion-mode prompts to `/completions` as text. Log-likelihood scoring needs the
server to return the prompt's own log-probabilities (`/completions` with `echo: true` and
`logprobs`, as vLLM does); `require_prompt_logprobs` finds out once, before a run stores anything.

The API key is read from the environment variable the spec names, at request time, and goes only
into the Authorization header: never into a message, a record or a log line.

The hosting policy (studio.hosting) decides which servers a visitor may make the studio contact and
which variables a key may come from, before anything is sent. Outside desktop mode the address is
checked again when the connection is made (studio.inference.served_transport: a name that resolved
to a public address at the check cannot be re-pointed at a loopback or private one), redirects are
never followed, and what a server answers in an error reaches the visitor only as its status and a
hint (studio.inference.served_errors): the body goes to the server log, for the operator.
What the server's answers mean (choices, counts, echoed logprobs) is read in
studio.inference.served_answers.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from studio.hosting import HostingPolicy
from studio.inference import served_answers as answers
from studio.inference.batch_generation import Generated
from studio.inference.generation import GenerationResult, cut_at_stop
from studio.inference.params import SamplingParams
from studio.inference.scoring import ChoiceScore, ScoredExample
from studio.inference.served_answers import (  # callers import these from here too
    ServedChatFormat,
    prompt_messages,
)
from studio.inference.served_errors import (  # ServedModelError: callers import it from here too
    ServedModelError,
    logged,
    status_error,
    stream_error,
    transport_error,
)
from studio.inference.served_transport import read_capped, shared_client
from studio.models.served import ServedSpec

PROBE_PROMPT = "The capital of France is Paris"
MAX_ANSWER_BYTES = 64 * 1024 * 1024  # one JSON answer; a bigger one is not read into memory
MAX_ERROR_BYTES = 64 * 1024  # of an error body, read for the server log
MAX_EVENT_CHARS = 4 * 1024 * 1024  # one line of a stream (an event is a few hundred bytes)

log = logging.getLogger(__name__)
_LINE_END = re.compile(r"\r\n|\r|\n")


class OpenAIBackend:
    """A model behind an OpenAI-compatible HTTP API (see studio.models.served)."""

    kind = "served"

    def __init__(
        self, served: ServedSpec, policy: HostingPolicy, client: httpx.Client | None = None
    ) -> None:
        # The policy refuses before anything is contacted: the server, then the key's variable
        # (read again at each request, so a key exported later is used).
        policy.check_served_url(served.base_url)
        if served.key_env is not None:
            policy.served_key(served.key_env)
        self.served = served
        self.policy = policy
        self.spec = served.spec
        self.location = served.base_url
        self.prompt_format = ServedChatFormat()
        self.client = client or shared_client(served.timeout_s, policy)

    # ----- checks made before a run stores anything -----

    def check(self) -> None:
        """The server answers and accepts the key (GET /models)."""
        self._request("GET", "/models")

    def require_prompt_logprobs(self) -> None:
        """Refuse log-likelihood scoring, naming what is missing, unless the server returns
        log-probabilities of the prompt's own tokens."""
        body = self._echo_body([PROBE_PROMPT])
        try:
            data = self._request("POST", "/completions", body)
            answers.echoed_logprobs(answers.choice(data, 0))
        except ServedModelError as exc:
            raise ServedModelError(
                f"log-likelihood scoring is not possible with the server at {self.location} "
                f"(model '{self.served.model}'): it does not return the prompt's log-"
                "probabilities (POST /completions with echo=true and logprobs=1, as vLLM "
                f"answers it). It said: {exc} Fix: use generation scoring (scoring: generate, "
                "or --scoring generate), or serve the model with vLLM."
            ) from None

    # ----- the backend protocol (studio.inference.backends.InferenceBackend) -----

    def stream(
        self,
        prompt: str,
        mode: str,
        params: SamplingParams,
        stop: threading.Event | None = None,
    ) -> Iterator[str | GenerationResult]:
        """Yield text pieces as the server streams them (SSE), then one GenerationResult."""
        stop = stop or threading.Event()
        seed = params.seed if params.seed is not None else random.randrange(2**32)
        path, body = self._generation_body(prompt, mode, params, seed)
        body.update(stream=True, stream_options={"include_usage": True})
        started, first, pieces = time.perf_counter(), None, []
        usage: dict[str, Any] = {}
        reason = "length"
        for event in self._events(path, body, stop):
            usage = event.get("usage") or usage
            for choice in event.get("choices") or []:
                piece = answers.piece(choice, mode)
                reason = choice.get("finish_reason") or reason
                if piece:
                    first = first if first is not None else time.perf_counter() - started
                    pieces.append(piece)
                    yield piece
        text = "".join(pieces)
        finish = "stopped" if stop.is_set() else answers.finish_reason(reason)
        trimmed = cut_at_stop(text, params.stop)
        if trimmed != text:
            text, finish = trimmed, "stop_string"
        yield GenerationResult(
            text=text,
            prompt_tokens=answers.count(usage, "prompt_tokens"),
            completion_tokens=answers.count(usage, "completion_tokens"),
            finish_reason=finish,
            seed=seed,
            first_token_s=first,
            latency_s=time.perf_counter() - started,
        )

    def generate(
        self,
        prompts: Sequence[str],
        mode: str,
        params: SamplingParams,
        *,
        batch_size: int = 8,
        stop: threading.Event | None = None,
    ) -> Iterator[Generated]:
        """One request per prompt, up to batch_size at a time; yields as each group finishes."""

        def one(index: int) -> Generated:
            began = time.perf_counter()
            path, body = self._generation_body(prompts[index], mode, params, params.seed)
            data = self._request("POST", path, body)
            usage = data.get("usage") or {}
            text = answers.piece(answers.choice(data, 0), mode, key="message")
            return Generated(
                index=index,
                text=cut_at_stop(text, params.stop),
                prompt_tokens=answers.count(usage, "prompt_tokens"),
                completion_tokens=answers.count(usage, "completion_tokens"),
                latency_s=time.perf_counter() - began,
            )

        yield from self._parallel(one, len(prompts), batch_size, stop)

    def score(
        self,
        prompts: Sequence[str],
        continuations: Sequence[Sequence[str]],
        mode: str,
        *,
        batch_rows: int = 16,
        stop: threading.Event | None = None,
    ) -> Iterator[ScoredExample]:
        """Each example's choices in one /completions request (echo + logprobs, one prompt per
        choice); the choice's score is the sum of its tokens' log-probabilities after the prompt."""
        if mode != "completion":
            raise ServedModelError(
                f"log-likelihood scoring through {self.location} needs completion-mode templates: "
                "the server applies the chat template only when it generates. Fix: use a "
                "completion-mode template, or generation scoring."
            )

        def one(index: int) -> ScoredExample:
            began = time.perf_counter()
            prompt, options = prompts[index], continuations[index]
            data = self._request(
                "POST", "/completions", self._echo_body([prompt + c for c in options])
            )
            scores, prompt_tokens = [], 0
            for j, option in enumerate(options):
                text = prompt + option
                logprob, n_tokens, prompt_tokens = answers.continuation_logprob(
                    answers.echoed_logprobs(answers.choice(data, j)), len(prompt), len(text)
                )
                scores.append(ChoiceScore(option, logprob, n_tokens, len(option.encode())))
            return ScoredExample(index, scores, prompt_tokens, time.perf_counter() - began)

        per_batch = max(1, batch_rows // max(1, len(continuations[0]) if continuations else 1))
        yield from self._parallel(one, len(prompts), per_batch, stop)

    # ----- HTTP -----

    def _generation_body(
        self, prompt: str, mode: str, params: SamplingParams, seed: int | None
    ) -> tuple[str, dict[str, Any]]:
        # top_k and repetition_penalty are not part of the OpenAI API (servers reject unknown
        # fields), so they are not sent; the Playground records only what was.
        body: dict[str, Any] = {
            "model": self.served.model,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
        }
        if not params.greedy:
            body["top_p"] = params.top_p
        if seed is not None:
            body["seed"] = seed
        if params.stop:
            body["stop"] = list(params.stop)[:4]  # the API's limit; all are cut client-side too
        if mode == "chat":
            return "/chat/completions", {**body, "messages": prompt_messages(prompt)}
        return "/completions", {**body, "prompt": prompt}

    def _echo_body(self, prompts: list[str]) -> dict[str, Any]:
        return {
            "model": self.served.model,
            "prompt": prompts if len(prompts) > 1 else prompts[0],
            "echo": True,
            "logprobs": 1,
            "max_tokens": 1,
            "temperature": 0.0,
        }

    def _headers(self) -> dict[str, str]:
        name = self.served.key_env
        if name is None:
            return {}
        key = self.policy.served_key(name)
        if not key:
            raise ServedModelError(
                f"the model spec {self.spec} reads its API key from the environment variable "
                f"{name}, which is not set. Fix: export {name}=<your key> before starting the "
                "studio, or remove key_env from the spec if the server needs no key."
            )
        return {"Authorization": f"Bearer {key}"}

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = self.location + path
        headers = self._headers()
        try:
            with self.client.stream(
                method, url, json=body, headers=headers, follow_redirects=False
            ) as response:
                if response.status_code >= 300:
                    raise self._status_error(response, path)
                content = read_capped(response, MAX_ANSWER_BYTES)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, path) from None
        if content is None:
            raise ServedModelError(
                f"the server at {self.location} answered {path} with more than "
                f"{MAX_ANSWER_BYTES // 2**20} MiB, which is not an answer the studio reads. Fix: "
                "check the base URL (usually ends in /v1)."
            )
        try:
            return json.loads(content)
        except ValueError:
            raise ServedModelError(
                f"the server at {self.location} answered {path} with something that is not JSON; "
                "is it an OpenAI-compatible server? Fix: check the base URL (usually ends in /v1)."
            ) from None

    def _events(
        self, path: str, body: dict[str, Any], stop: threading.Event
    ) -> Iterator[dict[str, Any]]:
        """The JSON events of a server-sent-event stream, until [DONE] or a stop."""
        url = self.location + path
        headers = self._headers()
        try:
            with self.client.stream(
                "POST", url, json=body, headers=headers, follow_redirects=False
            ) as response:
                if response.status_code >= 300:
                    raise self._status_error(response, path)
                for line in self._lines(response, path):
                    if stop.is_set():
                        return  # leaving the block closes the connection; the server cancels
                    data = line[5:].strip() if line.startswith("data:") else ""
                    if not data:
                        continue
                    if data == "[DONE]":
                        return
                    try:
                        event = json.loads(data)
                    except ValueError:
                        event = None
                    if not isinstance(event, dict):
                        log.warning(
                            "%s sent a stream event that is not a JSON object: %s",
                            url,
                            logged(data),
                        )
                        raise ServedModelError(
                            f"the server at {self.location} sent {path} a stream event that is "
                            "not a JSON object; is it an OpenAI-compatible server? Fix: check the "
                            "base URL (usually ends in /v1)."
                        )
                    if event.get("error"):
                        raise self._stream_error(event["error"], path)
                    yield event
        except httpx.HTTPError as exc:
            raise self._transport_error(exc, path) from None

    def _lines(self, response: httpx.Response, path: str) -> Iterator[str]:
        """The lines of a server-sent-event stream (ended by CRLF, LF or CR), none longer than
        MAX_EVENT_CHARS: a server that never ends a line is not buffered without bound."""
        pending = ""
        for text in response.iter_text():
            *lines, pending = _LINE_END.split(pending + text)
            yield from lines
            if len(pending) > MAX_EVENT_CHARS:
                raise ServedModelError(
                    f"the server at {self.location} sent {path} a stream line longer than "
                    f"{MAX_EVENT_CHARS // 2**20} MiB; is it an OpenAI-compatible server? Fix: "
                    "check the base URL (usually ends in /v1)."
                )
        if pending:
            yield pending

    def _parallel(self, one: Any, n: int, width: int, stop: threading.Event | None) -> Iterator:
        width = max(1, min(width, self.served.parallel))
        with ThreadPoolExecutor(max_workers=width, thread_name_prefix="studio-http") as pool:
            for start in range(0, n, width):
                if stop is not None and stop.is_set():
                    return
                yield from pool.map(one, range(start, min(start + width, n)))

    # ----- errors: the full story to the server log, what the visitor may see to the caller -----
    # The log lines stay here, under this module's logger name, which operators filter on;
    # served_errors words the messages.

    def _transport_error(self, exc: httpx.HTTPError, path: str) -> ServedModelError:
        log.warning(
            "served model %s: %s on %s: %s",
            self.location,
            type(exc).__name__,
            path,
            logged(str(exc)),
        )
        return transport_error(self.served, exc, path, self.policy.visitors_are_operators)

    def _status_error(self, response: httpx.Response, path: str) -> ServedModelError:
        """HTTP status, reason and a hint for the visitor; the body for the operator's log."""
        status = response.status_code
        body = read_capped(response, MAX_ERROR_BYTES, partial=True) or b""
        text = body.decode("utf-8", "replace")
        location = response.headers.get("location", "")
        log.warning(
            "served model %s answered %s with HTTP %s%s: %s",
            self.location,
            path,
            status,
            f" (Location: {logged(location)})" if location else "",
            logged(text),
        )
        operator = self.policy.visitors_are_operators
        return status_error(self.served, path, status, text, location, operator)

    def _stream_error(self, error: Any, path: str) -> ServedModelError:
        log.warning(
            "served model %s failed while streaming %s: %s", self.location, path, logged(error)
        )
        return stream_error(self.served, error, path, self.policy.visitors_are_operators)
