"""What a served model's failures tell the visitor: a cause and a fix, never the server's body.

What a server answers in an error reaches the visitor only as its status and a hint; its own
message is repeated on a desktop only, where the visitor is the operator. The body goes to the
server log (the backend writes it there, excerpted by `logged`).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from studio.models.errors import ModelError
from studio.models.served import ServedSpec

LOGGED_CHARS = 500  # of an error body, in the server log
SHOWN_CHARS = 200  # of a server's own error message, shown on a desktop only


class ServedModelError(ModelError):
    """The server could not be reached, refused the request, or lacks what the studio needs."""


def transport_error(
    served: ServedSpec, exc: httpx.HTTPError, path: str, operator: bool
) -> ServedModelError:
    """A request that got no HTTP answer: timed out, not connected, or broken off."""
    where = f"the model server at {served.base_url}"
    if isinstance(exc, httpx.TimeoutException):
        return ServedModelError(
            f"{where} did not answer {path} within {served.timeout_s:g} s. Fix: check "
            "that the server is healthy, or allow longer with ?timeout=SECONDS in the spec."
        )
    if isinstance(exc, httpx.ConnectError):
        return ServedModelError(
            f"cannot connect to {where} ({_reason(exc, operator)}). Fix: start the server (vLLM, "
            "TGI, `transformers serve`), or correct the host and port in the model spec "
            f"{served.spec}."
        )
    return ServedModelError(
        f"{where} failed on {path}: {type(exc).__name__}: {_reason(exc, operator)}"
    )


def _reason(exc: Exception, operator: bool) -> str:
    # The exception's text can name other hosts (a proxy, a resolver): it is shown only on a
    # desktop, where the visitor is the operator.
    text = " ".join(str(exc).split())
    if "refused" in text.lower():
        return "connection refused"
    if any(s in text.lower() for s in ("name or service", "nodename", "getaddrinfo")):
        return "the host name does not resolve"
    if operator and text:
        return capped(text, SHOWN_CHARS)
    return "the connection failed; the server log has the details"


def status_error(
    served: ServedSpec, path: str, status: int, body: str, location: str, operator: bool
) -> ServedModelError:
    """HTTP status, reason and a hint; the server's own message and redirect target only for
    an operator."""
    reason = httpx.codes.get_reason_phrase(status)
    message = (
        f"the model server at {served.base_url} answered {path} with HTTP {status}"
        + (f" {reason}" if reason else "")
        + "."
    )
    said = detail(body) if operator else ""
    if said:
        message += f" It said: {said}"
    if 300 <= status < 400:
        where = f" to {capped(location, SHOWN_CHARS)}" if location and operator else ""
        return ServedModelError(
            f"{message} It redirects{where}, and the studio does not follow redirects. Fix: "
            "give the server's final base URL in the spec (usually ending in /v1; mind "
            "http:// versus https://)."
        )
    return ServedModelError(f"{message} Fix: {status_hint(served, status)}.")


def status_hint(served: ServedSpec, status: int) -> str:
    if status in (401, 403):
        return (
            f"the key in {served.key_env} was refused; check it"
            if served.key_env
            else "the server wants an API key; add ?key_env=NAME to the spec, NAME being the "
            "environment variable that holds it"
        )
    if status == 404:
        return (
            "check the base URL (the part before /chat/completions, usually ending in /v1) "
            f"and that the server serves '{served.model}' (GET /models)"
        )
    if status == 429:
        return "the server is limiting requests; wait, or lower ?parallel= in the spec"
    if status >= 500:
        return "the server failed on its side; check the server (its operator has its log)"
    return (
        f"check that the server serves '{served.model}' and supports this request "
        "(its answer is in the studio's server log)"
    )


def stream_error(served: ServedSpec, error: Any, path: str, operator: bool) -> ServedModelError:
    """An error event in the middle of a stream."""
    message = f"the server at {served.base_url} failed while streaming {path}."
    said = detail({"error": error}) if operator else ""
    if said:
        message += f" It said: {said}"
    return ServedModelError(
        f"{message} Fix: check the server (the studio's server log has what it sent)."
    )


def detail(text: Any) -> str:
    """A server's own error message, from a JSON body's `error.message` (or `detail`,
    `message`): one line, short. Empty when the body has none (raw text, HTML and the like are
    never repeated: they go to the log)."""
    value = text
    if isinstance(text, str | bytes):
        try:
            value = json.loads(text)
        except ValueError:
            return ""
    if isinstance(value, dict):
        value = value.get("error") or value.get("detail") or value.get("message")
        if isinstance(value, dict):
            value = value.get("message")
    if not isinstance(value, str):
        return ""
    return capped(value, SHOWN_CHARS)


def capped(text: str, limit: int) -> str:
    """One printable line of at most `limit` characters."""
    line = " ".join("".join(c if c.isprintable() else " " for c in text).split())
    return line[:limit] + ("…" if len(line) > limit else "")


def logged(value: Any) -> str:
    """An excerpt for the server log: one line of at most LOGGED_CHARS characters."""
    return capped(value if isinstance(value, str) else repr(value), LOGGED_CHARS)
