"""Served-model specs (openai:MODEL@BASE_URL?...) and the HTTP backend's errors, with no model."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.hosting import HostingPolicy
from studio.inference.backends import open_served
from studio.inference.openai_backend import ServedChatFormat, ServedModelError, prompt_messages
from studio.inference.params import SamplingParams
from studio.models import ModelNotFoundError, resolve_spec
from studio.models.served import ServedSpecError, is_served_spec, parse_served_spec
from tests.conftest import ROOT

DESKTOP = HostingPolicy.desktop()


def test_parses_model_url_and_options_into_a_canonical_spec() -> None:
    served = parse_served_spec(
        "  OpenAI:HuggingFaceTB/SmolLM2-135M-Instruct@http://127.0.0.1:8000/v1/"
        "?timeout=30&parallel=2&key_env=MY_KEY "
    )
    assert served.model == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert served.base_url == "http://127.0.0.1:8000/v1"
    assert served.key_env == "MY_KEY"
    assert (served.timeout_s, served.parallel) == (30.0, 2)
    assert served.spec == (
        "openai:HuggingFaceTB/SmolLM2-135M-Instruct@http://127.0.0.1:8000/v1"
        "?key_env=MY_KEY&timeout=30&parallel=2"
    )
    assert parse_served_spec(served.spec) == served


def test_a_local_path_as_model_name_and_defaults() -> None:
    served = parse_served_spec("openai:/models/smollm2@https://example.org/v1")
    assert (served.model, served.base_url, served.key_env) == (
        "/models/smollm2",
        "https://example.org/v1",
        None,
    )
    assert served.spec == "openai:/models/smollm2@https://example.org/v1"
    assert is_served_spec("openai:x@http://h") and not is_served_spec("smollm2-135m-instruct")


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("openai:smollm2", "names no server"),
        ("openai:@http://127.0.0.1:8000/v1", "names no model"),
        ("openai:m@ftp://127.0.0.1/v1", "is not an http(s) URL"),
        ("openai:m@http:///v1", "is not an http(s) URL"),
        ("openai:m@http://127.0.0.1:99999/v1", "port"),
        ("openai:m@http://127.0.0.1:8000/v1?keyenv=X", "unknown option 'keyenv'"),
        ("openai:m@http://127.0.0.1:8000/v1?key_env=sk-123", "NAME of an environment variable"),
        ("openai:m@http://127.0.0.1:8000/v1?timeout=soon", "timeout must be a number"),
        ("openai:m@http://127.0.0.1:8000/v1?timeout=0", "timeout must be a number"),
        ("openai:m@http://127.0.0.1:8000/v1?parallel=0", "parallel must be a whole number"),
    ],
)
def test_bad_specs_say_what_is_wrong(spec: str, says: str) -> None:
    with pytest.raises(ServedSpecError, match=r"Fix|must|port|is not") as info:
        parse_served_spec(spec)
    assert says in str(info.value)


@pytest.mark.parametrize(
    "spec",
    [
        "openai:m@http://127.0.0.1:8000/v1?api_key=sk-secret-value",
        "openai:m@http://bob:sk-secret-value@127.0.0.1:8000/v1",
    ],
)
def test_a_secret_in_the_spec_is_refused_without_repeating_it(spec: str) -> None:
    with pytest.raises(ServedSpecError, match="stored with every run") as info:
        parse_served_spec(spec)
    assert "sk-secret-value" not in str(info.value)
    assert "key_env" in str(info.value)


def test_the_registry_refuses_to_load_a_served_model_and_checks_its_syntax() -> None:
    with pytest.raises(ModelNotFoundError, match=r"is a served model.*Compare or the Playground"):
        resolve_spec("openai:m@http://127.0.0.1:8000/v1")
    with pytest.raises(ServedSpecError, match="names no server"):
        resolve_spec("openai:m")


def test_served_chat_prompts_are_the_messages_sent() -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hé?"}]
    text = ServedChatFormat().apply_chat_template(messages, add_generation_prompt=True)
    assert prompt_messages(text) == messages
    assert "Hé" in text  # readable, not \\u-escaped


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_connection_refused_names_the_server_and_the_fix() -> None:
    port = _free_port()
    backend = open_served(f"openai:m@http://127.0.0.1:{port}/v1", DESKTOP)
    with pytest.raises(ServedModelError, match="cannot connect") as info:
        backend.check()
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message and "connection refused" in message
    assert "start the server" in message


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A socket that accepts connections and never answers (a hung server)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    accepted: list[socket.socket] = []
    done = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not done.is_set():
            try:
                accepted.append(sock.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(sock.getsockname()[1])
    done.set()
    thread.join()
    for conn in accepted:
        conn.close()
    sock.close()


def test_a_server_that_does_not_answer_times_out_with_the_fix(silent_server: int) -> None:
    backend = open_served(f"openai:m@http://127.0.0.1:{silent_server}/v1?timeout=0.5", DESKTOP)
    with pytest.raises(ServedModelError, match=r"did not answer /models within 0.5 s.*timeout="):
        backend.check()
    stream = backend.stream("Hi", "completion", SamplingParams(max_new_tokens=4))
    with pytest.raises(ServedModelError, match="did not answer /completions"):
        next(stream)


def test_a_missing_key_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSTRUCT_TEST_NO_SUCH_KEY", raising=False)
    backend = open_served(
        f"openai:m@http://127.0.0.1:{_free_port()}/v1?key_env=INSTRUCT_TEST_NO_SUCH_KEY", DESKTOP
    )
    with pytest.raises(ServedModelError, match="INSTRUCT_TEST_NO_SUCH_KEY, which is not set"):
        backend.check()


def test_studio_compare_with_an_unreachable_server_exits_2_and_stores_nothing(
    fresh_home: Path,
) -> None:
    port = _free_port()
    env = {**os.environ, "STUDIO_HOME": str(fresh_home), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("studio")),
            "compare",
            "--data",
            "studio/samples/reviews.csv",
            "--template",
            "reviews-sentiment",
            "--model",
            f"openai:served-model@http://127.0.0.1:{port}/v1",
            "--scoring",
            "generate",
            "--limit",
            "2",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr
    assert f"cannot connect to the model server at http://127.0.0.1:{port}/v1" in result.stderr
    assert "Traceback" not in result.stderr
    listed = subprocess.run(
        [str(Path(sys.executable).with_name("studio")), "runs", "list", "--json"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
