"""Served models under the hosting policy, against real HTTP servers on 127.0.0.1 (no model).

A small stdlib server records every request it receives (and the Authorization header sent
with it) and answers as configured: /models, /chat/completions, error statuses whose bodies hold
a secret-looking marker, redirects, broken streams. The tests check what the policy lets a
visitor make the studio send, and what a visitor gets to read back.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from studio.hosting import HostingPolicy, Mode, PolicyRefusal
from studio.inference.backends import open_served
from studio.inference.openai_backend import OpenAIBackend, ServedModelError
from studio.inference.params import SamplingParams
from studio.inference.registry import ModelBackends
from studio.models.manager import ModelManager
from studio.models.served import parse_served_spec
from studio.settings import load_settings

SECRET = "SECRET-MARKER-7f3a internal-db.corp.example:5432 password=hunter2"
KEY = "sk-served-policy-test-0123456789"
LOGGER = "studio.inference.openai_backend"
GREEDY = SamplingParams(temperature=0, max_new_tokens=8, seed=0)
DESKTOP = HostingPolicy.desktop()
CHAT = json.dumps([{"role": "user", "content": "Hi"}])


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"


@dataclass
class RecordingServer:
    """Answers /v1/models and /v1/chat/completions (plain and streamed) like an OpenAI-compatible
    server, or with the Answer set for a path; records (method, path, Authorization) of each
    request."""

    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    answers: dict[str, Answer] = field(default_factory=dict)

    def start(self) -> RecordingServer:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                owner.handle(self, None)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                owner.handle(self, json.loads(self.rfile.read(length) or b"{}"))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()
        return self

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def handle(self, handler: BaseHTTPRequestHandler, body: dict | None) -> None:
        self.seen.append((handler.command, handler.path, handler.headers.get("Authorization")))
        answer = self.answers.get(handler.path) or self.default(handler.path, body)
        handler.send_response(answer.status)
        handler.send_header("Content-Type", answer.content_type)
        handler.send_header("Content-Length", str(len(answer.body)))
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(answer.body)

    def default(self, path: str, body: dict | None) -> Answer:
        if path == "/v1/models":
            return Answer(200, json.dumps({"object": "list", "data": [{"id": "m"}]}).encode())
        if path == "/v1/chat/completions" and body is not None:
            if body.get("stream"):
                return sse({"choices": [{"index": 0, "delta": {"content": "Hello"}}]})
            message = {"role": "assistant", "content": "Hello"}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            usage = {"prompt_tokens": 3, "completion_tokens": 1}
            return Answer(200, json.dumps({"choices": [choice], "usage": usage}).encode())
        return Answer(404, json.dumps({"error": {"message": f"no route {path}"}}).encode())


def sse(*events: dict) -> Answer:
    lines = [f"data: {json.dumps(event)}\n\n" for event in events] + ["data: [DONE]\n\n"]
    return Answer(200, "".join(lines).encode(), content_type="text/event-stream")


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    running = RecordingServer().start()
    yield running
    running.stop()


@pytest.fixture
def other() -> Iterator[RecordingServer]:
    """A second server: where a redirect points."""
    running = RecordingServer().start()
    yield running
    running.stop()


def shared(*hosts: str, keys: frozenset[str] = frozenset({"OPENAI_API_KEY"})) -> HostingPolicy:
    return HostingPolicy(mode=Mode.SHARED, served_keys=keys, served_hosts=frozenset(hosts))


def demo(*hosts: str) -> HostingPolicy:
    return HostingPolicy(
        mode=Mode.DEMO, served_keys=frozenset({"OPENAI_API_KEY"}), served_hosts=frozenset(hosts)
    )


def refused(spec: str, policy: HostingPolicy) -> PolicyRefusal:
    with pytest.raises(PolicyRefusal) as info:
        open_served(spec, policy)
    return info.value


# ----- keys -----


def test_desktop_sends_the_key_from_any_variable_the_spec_names(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LAB_SERVER_TOKEN", KEY)
    backend = open_served(f"openai:m@{server.url}?key_env=MY_LAB_SERVER_TOKEN", DESKTOP)
    backend.check()
    [done] = list(backend.generate([CHAT], "chat", GREEDY))
    assert done.text == "Hello" and done.prompt_tokens == 3
    assert server.seen == [
        ("GET", "/v1/models", f"Bearer {KEY}"),
        ("POST", "/v1/chat/completions", f"Bearer {KEY}"),
    ]


@pytest.mark.parametrize("name", ["STUDIO_AUTH", "STUDIO_DB_URL"])
@pytest.mark.parametrize(
    "policy",
    [
        DESKTOP,
        # Even an allow-list naming them does not let the studio's own settings leave.
        shared("*", keys=frozenset({"STUDIO_AUTH", "STUDIO_DB_URL", "OPENAI_API_KEY"})),
        demo("*"),
    ],
    ids=["desktop", "shared", "demo"],
)
def test_the_studios_own_settings_are_never_sent_as_a_key(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch, name: str, policy: HostingPolicy
) -> None:
    monkeypatch.setenv(name, "alice:pw1,bob:pw2")
    if not policy.visitors_are_operators:  # let the host through, so the key is what refuses
        policy = HostingPolicy(
            mode=policy.mode,
            served_keys=policy.served_keys,
            served_hosts=frozenset({f"127.0.0.1:{server.port}"}),
        )
    refusal = refused(f"openai:m@{server.url}?key_env={name}", policy)
    assert refusal.rule == "served-keys" and refusal.setting is None
    assert f"key_env={name}" in str(refusal) and "OPENAI_API_KEY" in str(refusal)
    assert "pw1" not in str(refusal)
    assert server.seen == []
    # Built directly (not through open_served) the backend refuses the same way.
    with pytest.raises(PolicyRefusal, match="served-keys"):
        OpenAIBackend(parse_served_spec(f"openai:m@{server.url}?key_env={name}"), policy)
    assert server.seen == []


@pytest.mark.parametrize("make", [shared, demo], ids=["shared", "demo"])
def test_shared_studios_send_only_listed_key_variables(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch, make: Any
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_token")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    policy = make(f"127.0.0.1:{server.port}")
    refusal = refused(f"openai:m@{server.url}?key_env=HF_TOKEN", policy)
    assert refusal.rule == "served-keys" and refusal.setting == "STUDIO_SERVED_KEYS"
    assert "STUDIO_SERVED_KEYS" in str(refusal) and "hf_secret_token" not in str(refusal)
    assert server.seen == []

    open_served(f"openai:m@{server.url}?key_env=OPENAI_API_KEY", policy).check()
    assert server.seen == [("GET", "/v1/models", f"Bearer {KEY}")]


def test_an_unset_listed_key_is_named_and_nothing_is_sent(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = open_served(
        f"openai:m@{server.url}?key_env=OPENAI_API_KEY", shared(f"127.0.0.1:{server.port}")
    )
    with pytest.raises(ServedModelError, match="OPENAI_API_KEY, which is not set"):
        backend.check()
    assert server.seen == []


# ----- hosts -----


def test_shared_studios_reach_only_listed_servers(server: RecordingServer) -> None:
    for policy in (shared(), shared("api.example.com"), shared("127.0.0.1:1")):
        refusal = refused(f"openai:m@{server.url}", policy)
        assert refusal.rule == "served-hosts" and refusal.setting == "STUDIO_SERVED_HOSTS"
        assert "STUDIO_SERVED_HOSTS" in str(refusal) and f"127.0.0.1:{server.port}" in str(refusal)
    assert server.seen == []
    for listed in (f"127.0.0.1:{server.port}", "127.0.0.1"):
        open_served(f"openai:m@{server.url}", shared(listed)).check()
    open_served(f"openai:m@http://localhost:{server.port}/v1", shared("localhost")).check()
    assert [path for _, path, _ in server.seen] == ["/v1/models"] * 3


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "localhost",
        "LocalHost",
        "localhost.",
        "studio.localhost",
        "[::1]",
        "0",
        "0.0.0.0",
        "0x7f000001",
        "2130706433",
        "017700000001",
        "127.1",
        "[::ffff:127.0.0.1]",
        "[::ffff:a9fe:a9fe]",
        "[64:ff9b::7f00:1]",
        "[2002:7f00:1::]",
        "10.0.0.1",
        "172.16.0.1",
        "192.168.1.1",
        "100.64.0.1",
        "169.254.169.254",
        "[fe80::1]",
        "[fd00::1]",
    ],
)
def test_a_wildcard_does_not_cover_loopback_private_or_link_local_hosts(
    server: RecordingServer, host: str
) -> None:
    # The server's own port: a request that got through would reach it.
    refusal = refused(f"openai:m@http://{host}:{server.port}/v1", shared("*"))
    assert refusal.rule == "served-hosts" and refusal.setting == "STUDIO_SERVED_HOSTS"
    assert "STUDIO_SERVED_HOSTS" in str(refusal) and "'*'" in str(refusal)
    assert server.seen == []


def test_checking_served_models_refuses_before_contacting_any_server(
    server: RecordingServer, tmp_path: Path
) -> None:
    specs = [f"openai:m@{server.url}", "openai:m@http://169.254.169.254/v1"]
    backends = ModelBackends(ModelManager(load_settings(home=tmp_path)), shared("*"))
    with pytest.raises(PolicyRefusal, match="STUDIO_SERVED_HOSTS"):
        backends.check(specs, "generate", [])
    assert server.seen == []


def test_a_name_re_pointed_at_this_machine_after_the_check_is_not_dialled(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the name resolves to a public address when the policy checks it, and to
    127.0.0.1 when the connection is made; the connection is judged on the address dialled."""
    real = socket.getaddrinfo
    answers = iter(["93.184.216.34"])

    def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host != "rebind.example":
            return real(host, port, *args, **kwargs)
        address = next(answers, "127.0.0.1")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port or 0))]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding)
    backend = open_served(f"openai:m@http://rebind.example:{server.port}/v1", shared("*"))
    with pytest.raises(PolicyRefusal) as info:
        backend.check()
    assert info.value.rule == "served-hosts" and "STUDIO_SERVED_HOSTS" in str(info.value)
    with pytest.raises(PolicyRefusal, match="STUDIO_SERVED_HOSTS"):
        next(backend.stream(CHAT, "chat", GREEDY))
    assert server.seen == []


# ----- what a visitor reads back -----


def error_body(status: int) -> bytes:
    return json.dumps({"error": {"message": f"upstream said {SECRET}", "code": status}}).encode()


@pytest.mark.parametrize(
    ("status", "reason", "hint"),
    [
        (401, "Unauthorized", "the key in OPENAI_API_KEY was refused"),
        (403, "Forbidden", "the key in OPENAI_API_KEY was refused"),
        (404, "Not Found", "check the base URL"),
        (400, "Bad Request", "check that the server serves 'm'"),
        (429, "Too Many Requests", "lower ?parallel="),
        (500, "Internal Server Error", "failed on its side"),
        (503, "Service Unavailable", "failed on its side"),
    ],
)
def test_error_bodies_are_summarised_for_visitors_and_logged_for_the_operator(
    server: RecordingServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    status: int,
    reason: str,
    hint: str,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    caplog.set_level(logging.WARNING, logger=LOGGER)
    server.answers["/v1/models"] = Answer(status, error_body(status))
    server.answers["/v1/chat/completions"] = Answer(status, error_body(status))
    spec = f"openai:m@{server.url}?key_env=OPENAI_API_KEY"
    backend = open_served(spec, shared(f"127.0.0.1:{server.port}"))
    for call in (backend.check, lambda: list(backend.generate([CHAT], "chat", GREEDY))):
        with pytest.raises(ServedModelError) as info:
            call()
        message = str(info.value)
        assert f"HTTP {status} {reason}." in message and hint in message, message
        assert "SECRET" not in message and "hunter2" not in message and KEY not in message
    with pytest.raises(ServedModelError) as info:  # streamed: the status comes before events
        next(backend.stream(CHAT, "chat", GREEDY))
    assert f"HTTP {status} {reason}." in str(info.value) and "SECRET" not in str(info.value)
    logged = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(logged) == 3 and all("SECRET-MARKER-7f3a" in line for line in logged)
    assert all(KEY not in line for line in logged)

    # On a desktop the visitor is the operator: the server's own message, one short line.
    desk = open_served(spec, DESKTOP)
    with pytest.raises(ServedModelError, match="It said: upstream said SECRET-MARKER-7f3a"):
        desk.check()


def test_a_desktop_sees_only_a_short_json_message_never_raw_bodies(
    server: RecordingServer,
) -> None:
    long = json.dumps({"error": {"message": "x\n" * 400 + SECRET}}).encode()
    server.answers["/v1/models"] = Answer(500, long)
    with pytest.raises(ServedModelError) as info:
        open_served(f"openai:m@{server.url}", DESKTOP).check()
    said = str(info.value).split("It said: ", 1)[1].split(" Fix:", 1)[0]
    assert "\n" not in said and len(said) <= 201 and said.endswith("…")
    assert "SECRET" not in said

    html = f"<html><body><h1>502 Bad Gateway</h1><!-- {SECRET} --></body></html>".encode()
    server.answers["/v1/models"] = Answer(502, html, content_type="text/html")
    with pytest.raises(ServedModelError) as info:
        open_served(f"openai:m@{server.url}", DESKTOP).check()
    assert "HTTP 502 Bad Gateway." in str(info.value) and "SECRET" not in str(info.value)


@pytest.mark.parametrize("policy_name", ["shared", "desktop"])
def test_an_error_event_inside_a_stream_is_summarised(
    server: RecordingServer, caplog: pytest.LogCaptureFixture, policy_name: str
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    server.answers["/v1/chat/completions"] = sse(
        {"choices": [{"index": 0, "delta": {"content": "Hel"}}]},
        {"error": {"message": f"engine crashed: {SECRET}", "type": "internal"}},
    )
    policy = shared(f"127.0.0.1:{server.port}") if policy_name == "shared" else DESKTOP
    stream = open_served(f"openai:m@{server.url}", policy).stream(CHAT, "chat", GREEDY)
    assert next(stream) == "Hel"
    with pytest.raises(ServedModelError, match="failed while streaming") as info:
        next(stream)
    if policy_name == "shared":
        assert "SECRET" not in str(info.value) and "engine crashed" not in str(info.value)
    else:
        assert "It said: engine crashed: SECRET-MARKER-7f3a" in str(info.value)
    assert any("SECRET-MARKER-7f3a" in r.getMessage() for r in caplog.records)


def test_a_stream_event_that_is_not_json_is_a_clear_error(server: RecordingServer) -> None:
    server.answers["/v1/chat/completions"] = Answer(
        200, f"data: {SECRET}\n\n".encode(), content_type="text/event-stream"
    )
    stream = open_served(f"openai:m@{server.url}", shared(f"127.0.0.1:{server.port}")).stream(
        CHAT, "chat", GREEDY
    )
    with pytest.raises(ServedModelError, match="not a JSON object") as info:
        next(stream)
    assert "SECRET" not in str(info.value)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_not_followed(
    server: RecordingServer, other: RecordingServer, monkeypatch: pytest.MonkeyPatch, status: int
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    # A JSON body with the redirect: it must not be taken for the answer either.
    for path in ("/v1/models", "/v1/chat/completions"):
        server.answers[path] = Answer(
            status, b'{"object": "list", "data": []}', {"Location": f"{other.url}/models"}
        )
    spec = f"openai:m@{server.url}?key_env=OPENAI_API_KEY"
    both = shared(f"127.0.0.1:{server.port}", f"127.0.0.1:{other.port}")
    for policy in (both, DESKTOP):
        backend = open_served(spec, policy)
        with pytest.raises(ServedModelError, match="does not follow redirects") as info:
            backend.check()
        assert f"HTTP {status}" in str(info.value)
        assert (str(other.port) in str(info.value)) is policy.visitors_are_operators
        with pytest.raises(ServedModelError, match="does not follow redirects"):
            list(backend.generate([CHAT], "chat", GREEDY))
        with pytest.raises(ServedModelError, match="does not follow redirects"):
            next(backend.stream(CHAT, "chat", GREEDY))
    assert other.seen == []
    assert len(server.seen) == 6


@pytest.fixture
def garbage_server() -> Iterator[int]:
    """A TCP server that answers any request with bytes that are not HTTP."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.settimeout(0.2)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(f"-ERR {SECRET}\r\n\r\n".encode())
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(sock.getsockname()[1])
    done.set()
    thread.join()
    sock.close()


def test_transport_error_text_is_not_echoed_to_visitors(
    garbage_server: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger=LOGGER)
    spec = f"openai:m@http://127.0.0.1:{garbage_server}/v1?timeout=5"
    with pytest.raises(ServedModelError) as info:
        open_served(spec, shared(f"127.0.0.1:{garbage_server}")).check()
    message = str(info.value)
    assert f"127.0.0.1:{garbage_server}" in message and "server log" in message
    assert "SECRET" not in message and "hunter2" not in message
    assert any("RemoteProtocolError" in r.getMessage() for r in caplog.records)


def test_stream_lines_may_end_in_crlf_and_an_endless_line_is_refused(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import studio.inference.openai_backend as openai_backend

    event = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}]}
    crlf = f"data: {json.dumps(event)}\r\n\r\ndata: [DONE]\r\n\r\n".encode()
    server.answers["/v1/chat/completions"] = Answer(200, crlf, content_type="text/event-stream")
    backend = open_served(f"openai:m@{server.url}", shared(f"127.0.0.1:{server.port}"))
    *pieces, result = list(backend.stream(CHAT, "chat", GREEDY))
    assert pieces == ["Hi"] and result.text == "Hi"

    monkeypatch.setattr(openai_backend, "MAX_EVENT_CHARS", 1000)
    endless = b"data: " + b"x" * 5000
    server.answers["/v1/chat/completions"] = Answer(200, endless, content_type="text/event-stream")
    with pytest.raises(ServedModelError, match="stream line longer than"):
        next(backend.stream(CHAT, "chat", GREEDY))


def test_an_oversized_answer_is_not_read_into_memory(
    server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import studio.inference.openai_backend as openai_backend

    monkeypatch.setattr(openai_backend, "MAX_ANSWER_BYTES", 1000)
    server.answers["/v1/models"] = Answer(200, json.dumps({"data": ["x" * 5000]}).encode())
    with pytest.raises(ServedModelError, match="answered /models with more than"):
        open_served(f"openai:m@{server.url}", DESKTOP).check()
