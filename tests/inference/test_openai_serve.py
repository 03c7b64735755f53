"""The OpenAI-compatible backend against a real `transformers serve` process on the bundled model.

The server runs the converted SmolLM2 folder offline, bound to 127.0.0.1 on a free port; the
studio talks to it over HTTP exactly as it would to vLLM or a hosted API. Greedy answers through
the server are checked against the same model run locally by the studio.
"""

from __future__ import annotations

import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from studio.compare.config import build_config
from studio.compare.engine import RowDone, RunFinished
from studio.hosting import HostingPolicy
from studio.inference.backends import LocalBackend, open_served
from studio.inference.openai_backend import ServedModelError, prompt_messages
from studio.inference.params import SamplingParams
from studio.models.loading import LoadRequest
from studio.playground.engine import ChatRequest, Delta, Finished, Status
from studio.services import create_services
from studio.ui.playground.views import stats_markdown
from tests import needs
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.model

SST2 = SHARED_DATA / "sst2"
LOCAL = "smollm2-135m-instruct"
GREEDY = SamplingParams(temperature=0, max_new_tokens=8, seed=0)
READY_WITHIN_S = 600  # a guard against a hung start on a busy machine, not a measurement


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def converted_folder(model_home: Path, alias: str = LOCAL) -> Path:
    from studio.models.convert import ensure_converted
    from studio.models.registry import resolve_spec

    return Path(ensure_converted(resolve_spec(alias), model_home / "models"))


@pytest.fixture(scope="module")
def transformers_serve(model_home: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`transformers serve` pinned to the converted folder; yields the served-model spec."""
    needs.package("openai", "transformers serve needs it")
    folder = converted_folder(model_home)
    port = free_port()
    log = tmp_path_factory.mktemp("serve") / "transformers-serve.log"
    command = [
        str(Path(sys.executable).with_name("transformers")),
        "serve",
        str(folder),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--device",
        "cpu",
        "--dtype",
        "float32",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(process, base_url, log)
        # One request at a time, with time to queue on a shared CPU (the tests run in parallel).
        yield f"openai:{folder}@{base_url}/v1?timeout=900&parallel=1"
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(process: subprocess.Popen, base_url: str, log: Path) -> None:
    deadline = time.monotonic() + READY_WITHIN_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"transformers serve exited ({process.returncode}):\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"transformers serve was not ready after {READY_WITHIN_S} s:\n{log.read_text()}")


@pytest.fixture
def services(settings):
    services = create_services(settings)
    yield services
    services.close()


def test_chat_generation_through_the_server_equals_the_local_model(
    transformers_serve: str, services
) -> None:
    served = open_served(transformers_serve, HostingPolicy.desktop())
    local = LocalBackend(services.models.get(LoadRequest(LOCAL)))
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    served_prompt = served.prompt_format.apply_chat_template(messages)
    local_prompt = local.prompt_format.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    [remote] = list(served.generate([served_prompt], "chat", GREEDY))
    [here] = list(local.generate([local_prompt], "chat", GREEDY))
    assert remote.text == here.text and remote.text.strip()
    assert remote.prompt_tokens == here.prompt_tokens  # the server applied the same template
    # The server counts the end-of-turn token; the studio's batched generation leaves it out.
    assert remote.completion_tokens - here.completion_tokens in (0, 1)


def test_a_comparison_with_generation_scoring_is_stored_like_a_local_one(
    transformers_serve: str, services
) -> None:
    needs.shared_data("sst2", "validation.tsv")
    config = build_config(
        data=str(SST2 / "validation.tsv"),
        shot_pool=str(SST2 / "train.tsv"),
        templates=["sst2-sentiment", "sst2-sentiment-completion"],
        models=[transformers_serve, LOCAL],
        shots=[1],
        limit=3,
        scoring="generate",
        max_new_tokens=3,
    )
    events = list(services.comparisons.run(config))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"
    assert sum(isinstance(e, RowDone) for e in events) == 12
    run = services.store.get_comparison_run(events[-1].run_id)
    assert [c.model_spec for c in run.configs] == [transformers_serve] * 2 + [LOCAL] * 2
    by_config = {c.id: c for c in run.configs}
    rows: dict[tuple[str, str, int], object] = {}
    for r in services.store.comparison_results(run.id):
        cfg = by_config[r.config_id]
        rows[(cfg.model_spec, cfg.template_name, r.example_index)] = r
    for index in range(3):
        remote = rows[(transformers_serve, "sst2-sentiment-completion", index)]
        here = rows[(LOCAL, "sst2-sentiment-completion", index)]
        assert remote.prompt_text == here.prompt_text  # completion mode: the same text is sent
        assert (remote.output, remote.prediction, remote.correct) == (
            here.output,
            here.prediction,
            here.correct,
        )
        remote_chat = rows[(transformers_serve, "sst2-sentiment", index)]
        here_chat = rows[(LOCAL, "sst2-sentiment", index)]
        sent = prompt_messages(remote_chat.prompt_text)  # chat mode: the messages sent
        assert [m["role"] for m in sent] == ["system", "user", "assistant", "user"]
        assert all(m["content"] in here_chat.prompt_text for m in sent)
        assert remote_chat.output == here_chat.output
        assert remote_chat.prompt_tokens == here_chat.prompt_tokens > 0
        assert remote_chat.completion_tokens - here_chat.completion_tokens in (0, 1)


@pytest.mark.parametrize(
    ("template", "says"),
    [
        ("sst2-sentiment-completion", "does not return the prompt's log-probabilities"),
        ("sst2-sentiment", "needs completion-mode templates"),
    ],
)
def test_log_likelihood_is_refused_before_anything_is_stored(
    transformers_serve: str, services, template: str, says: str
) -> None:
    needs.shared_data("sst2", "validation.tsv")
    config = build_config(
        data=str(SST2 / "validation.tsv"),
        templates=[template],
        models=[LOCAL, transformers_serve],
        limit=2,
        scoring="loglik",
    )
    with pytest.raises(ServedModelError) as info:
        list(services.comparisons.run(config))
    message = str(info.value)
    assert says in message
    assert "generation scoring" in message
    if "log-probabilities" in message:
        assert transformers_serve.split("@")[1].split("?")[0] in message
    assert services.store.list_comparison_runs() == []


def test_the_playground_streams_a_served_model_and_logs_what_was_sent(
    transformers_serve: str, services
) -> None:
    request = ChatRequest(
        model=transformers_serve,
        user_message="Name a colour.",
        system_prompt="Answer in one sentence.",
        params=SamplingParams(temperature=0, max_new_tokens=6, seed=3, top_k=7),
    )
    events = list(services.playground.stream(request))
    assert isinstance(events[0], Status) and "127.0.0.1" in events[0].message
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert len(deltas) >= 2 and all(b.startswith(a) for a, b in itertools.pairwise(deltas))
    finished = events[-1]
    assert isinstance(finished, Finished)
    record = services.store.get_exchange(finished.exchange_id)
    assert record.response == deltas[-1] == finished.result.text
    assert record.model_spec == transformers_serve and record.model_source == "served"
    assert record.model_resolved_path == transformers_serve.split("@")[1].split("?")[0]
    assert json.loads(record.prompt_text) == [
        {"role": "system", "content": "Answer in one sentence."},
        {"role": "user", "content": "Name a colour."},
    ]
    assert record.parameters["seed"] == 3 and "top_k" not in record.parameters
    assert record.completion_tokens == 6 and record.prompt_tokens > 0
    assert record.finish_reason == "length"


def test_a_model_the_server_does_not_serve_is_an_http_error_and_nothing_is_logged(
    transformers_serve: str, services
) -> None:
    wrong = "openai:no-such-model@" + transformers_serve.split("@")[1]
    request = ChatRequest(model=wrong, user_message="Hello?", params=GREEDY)
    with pytest.raises(ServedModelError) as info:
        list(services.playground.stream(request))
    message = str(info.value)
    assert "answered /chat/completions with HTTP 400" in message
    assert "no-such-model" in message  # the server's own reason: it is pinned to another model
    assert services.store.list_exchanges() == []


def test_stop_ends_a_served_stream_and_keeps_what_arrived(
    transformers_serve: str, services
) -> None:
    stop = threading.Event()
    request = ChatRequest(
        model=transformers_serve,
        user_message="Count from one to fifty in words.",
        params=SamplingParams(temperature=0, max_new_tokens=200, seed=0),
    )
    events = []
    for event in services.playground.stream(request, stop):
        events.append(event)
        if isinstance(event, Delta) and len(events) >= 3:
            stop.set()
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.record.finish_reason == "stopped"
    last = [e.text for e in events if isinstance(e, Delta)][-1]
    assert finished.record.response == last and last
    assert services.store.get_exchange(finished.exchange_id).finish_reason == "stopped"
    # A server reports token counts at a stream's end: a stopped stream has none, and they are
    # stored as unknown, not as 0.
    assert (finished.record.prompt_tokens, finished.record.completion_tokens) == (None, None)
    assert "token counts not reported by the server" in stats_markdown(finished)


def test_a_served_judge_answers_in_words_and_its_first_verdict_counts(
    transformers_serve: str, services
) -> None:
    """A served model as a pointwise judge: no prompt log-probabilities over HTTP, so it answers
    greedily and the first verdict word of its raw answer is the verdict (both stored)."""
    from studio.compare.metrics import first_choice_in
    from studio.compare.summary import judge_summaries

    seeds = needs.shared_data("self-instruct", "seed_tasks.jsonl")
    config = build_config(
        data=str(seeds),
        templates=["alpaca-instruction"],
        models=[LOCAL],
        scoring="generate",
        max_new_tokens=6,
        limit=2,
        judge=transformers_serve,
        judge_template="judge-pass-fail",
    )
    events = list(services.comparisons.run(config))
    assert events[-1].status == "completed", events[-1]
    run = services.store.get_comparison_run(events[-1].run_id)
    assert run.judge["scoring"] == "generate" and run.judge["model"] == transformers_serve
    for result in services.store.comparison_results(run.id):
        judged = result.judgement
        assert judged["raw"] is not None and judged["scores"] is None
        assert judged["verdict"] == first_choice_in(judged["raw"], ["yes", "no"])
        assert judged["score"] == {"yes": 1.0, "no": 0.0}.get(judged["verdict"])
        assert f"Answer to grade: {result.output.strip()}" in judged["prompt"]
    (summary,) = judge_summaries(services.store, run.id)
    assert summary.n + summary.unjudged == 2
