"""The model spec of a served model: `openai:MODEL@BASE_URL[?key_env=NAME&timeout=S&parallel=N]`.

A served model runs on an OpenAI-compatible HTTP server (vLLM, TGI, `transformers serve`, a hosted
API). The spec names the model as the server knows it and the server's base URL (the part before
`/chat/completions`, usually ending in `/v1`). An API key is never part of a spec — specs are
stored with every run — only the NAME of the environment variable that holds it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from studio.models.errors import ModelNotFoundError

PREFIX = "openai:"
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_PARALLEL = 4
EXAMPLE = "openai:smollm2@http://127.0.0.1:8000/v1?key_env=OPENAI_API_KEY"
OPTIONS = ("key_env", "timeout", "parallel")

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_OPTIONS = ("key", "api_key", "apikey", "token", "password", "secret")


class ServedSpecError(ModelNotFoundError):
    """A served-model spec is malformed; the message shows the expected form."""


@dataclass(frozen=True)
class ServedSpec:
    """A parsed served-model spec. `spec` is its canonical text, the one runs record."""

    model: str
    base_url: str
    key_env: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S  # per request, queueing on the server included
    parallel: int = DEFAULT_PARALLEL  # concurrent requests of a comparison (servers batch them)

    @property
    def spec(self) -> str:
        options = []
        if self.key_env:
            options.append(f"key_env={self.key_env}")
        if self.timeout_s != DEFAULT_TIMEOUT_S:
            options.append(f"timeout={self.timeout_s:g}")
        if self.parallel != DEFAULT_PARALLEL:
            options.append(f"parallel={self.parallel}")
        query = f"?{'&'.join(options)}" if options else ""
        return f"{PREFIX}{self.model}@{self.base_url}{query}"


def is_served_spec(spec: str) -> bool:
    return spec.strip().lower().startswith(PREFIX)


def parse_served_spec(spec: str) -> ServedSpec:
    """Parse and check a served-model spec; every problem is a ServedSpecError with the fix."""
    text = spec.strip()
    if not is_served_spec(text):
        raise ServedSpecError(f"'{text}' is not a served-model spec; expected e.g. {EXAMPLE}")
    body = text[len(PREFIX) :]
    model, at, url = body.rpartition("@")
    if not at or not url.lower().startswith(("http://", "https://")):
        # rpartition found no '@', or the last '@' is inside the URL (user:pass@host).
        model, at, url = body.partition("@")
    if not at:
        raise ServedSpecError(
            f"'{text}' names no server. Fix: write openai:MODEL@BASE_URL, e.g. {EXAMPLE}"
        )
    model = model.strip()
    if not model:
        raise ServedSpecError(
            f"'{text}' names no model before '@'. Fix: give the model name the server serves "
            f"(GET BASE_URL/models lists them), e.g. {EXAMPLE}"
        )
    base_url, options = _split_options(text, url.strip())
    return ServedSpec(
        model=model,
        base_url=_check_url(text, base_url),
        key_env=_key_env(text, options),
        timeout_s=_timeout(text, options),
        parallel=_parallel(text, options),
    )


def _split_options(text: str, url: str) -> tuple[str, dict[str, str]]:
    base, _, query = url.partition("?")
    options: dict[str, str] = {}
    for name, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
        key = name.strip().lower()
        if key in _SECRET_OPTIONS:
            raise ServedSpecError(
                f"'{_redact(text)}' puts a secret ({name}=…) in the model spec, which is stored "
                "with every run. Fix: export the key in an environment variable and name it with "
                "key_env=NAME, e.g. ?key_env=OPENAI_API_KEY"
            )
        if key not in OPTIONS:
            raise ServedSpecError(
                f"'{text}': unknown option '{name}'. Fix: use only {', '.join(OPTIONS)} "
                f"(e.g. {EXAMPLE}&timeout=60)"
            )
        options[key] = value.strip()
    return base.rstrip("/"), options


def _check_url(text: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ServedSpecError(
            f"'{text}': '{url}' is not an http(s) URL with a host. Fix: give the server's base "
            "URL, e.g. http://127.0.0.1:8000/v1"
        )
    if parts.username or parts.password:
        raise ServedSpecError(
            f"'{_redact(text)}' puts credentials in the URL, which is stored with every run. "
            "Fix: remove them and name the environment variable holding the key with key_env=NAME"
        )
    if parts.fragment:
        raise ServedSpecError(f"'{text}': the base URL must not have a #fragment.")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port outside 0-65535
    except ValueError:
        raise ServedSpecError(f"'{text}': the port in '{url}' is not valid.") from None
    return url


def _key_env(text: str, options: dict[str, str]) -> str | None:
    name = options.get("key_env")
    if name is None:
        return None
    if not _ENV_NAME.match(name):
        raise ServedSpecError(
            f"'{text}': key_env must be the NAME of an environment variable (letters, digits, _), "
            f"not '{name[:3]}…'. Fix: export the key, e.g. OPENAI_API_KEY=…, and write "
            "key_env=OPENAI_API_KEY"
        )
    return name


def _timeout(text: str, options: dict[str, str]) -> float:
    raw = options.get("timeout")
    if raw is None:
        return DEFAULT_TIMEOUT_S
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 3600:
        raise ServedSpecError(
            f"'{text}': timeout must be a number of seconds between 0 and 3600, not '{raw}'."
        )
    return value


def _parallel(text: str, options: dict[str, str]) -> int:
    raw = options.get("parallel")
    if raw is None:
        return DEFAULT_PARALLEL
    if not raw.isdigit() or not 1 <= int(raw) <= 64:
        raise ServedSpecError(
            f"'{text}': parallel must be a whole number of concurrent requests between 1 and 64, "
            f"not '{raw}'."
        )
    return int(raw)


def _redact(text: str) -> str:
    """The spec with whatever follows '=' or precedes '@' in the URL part blanked out."""
    head, _, url = text.partition("@")
    parts = urlsplit(url)
    if parts.username or parts.password:
        url = url.replace(parts.netloc, "…@" + (parts.hostname or ""), 1)
    url = re.sub(r"=([^&]*)", "=…", url)
    return f"{head}@{url}"
