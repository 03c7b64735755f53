"""The Playground engine end to end on the real SmolLM2 and a real SQLite store."""

from __future__ import annotations

import itertools
import threading

import pytest

from studio.inference.params import SamplingParams
from studio.playground.engine import ChatRequest, Delta, Finished, Status, conversation_messages
from studio.services import create_services

pytestmark = pytest.mark.model

GREEDY = SamplingParams(temperature=0, max_new_tokens=24, seed=0)


@pytest.fixture
def services(settings):
    services = create_services(settings)
    yield services
    services.close()


def run(services, request: ChatRequest, stop: threading.Event | None = None):
    events = list(services.playground.stream(request, stop))
    finished = events[-1]
    assert isinstance(finished, Finished)
    return events, finished


def test_streams_a_greedy_answer_logs_it_and_reloads_it(services) -> None:
    request = ChatRequest(
        model="smollm2-135m-instruct",
        user_message="What is the capital of France?",
        params=GREEDY,
        system_prompt="You are a concise assistant.",
    )
    events, finished = run(services, request)
    deltas = [e.text for e in events if isinstance(e, Delta)]
    assert len(deltas) > 3, "tokens should arrive one by one, not in a single piece"
    assert all(b.startswith(a) for a, b in itertools.pairwise(deltas))
    assert any(isinstance(e, Status) for e in events)  # loading progress came first
    answer = finished.record.response
    assert "Paris" in answer
    assert finished.result.finish_reason in ("eos", "length")

    stored = services.store.get_exchange(finished.exchange_id)
    assert stored.response == answer
    assert stored.prompt_text.startswith("<|im_start|>system\nYou are a concise assistant.")
    assert stored.prompt_text.endswith("<|im_start|>assistant\n")
    assert stored.parameters["temperature"] == 0 and stored.parameters["seed"] == 0
    assert stored.prompt_tokens == finished.result.prompt_tokens > 10
    assert stored.completion_tokens == finished.result.completion_tokens > 0
    assert stored.latency_ms > 0 and stored.mode == "chat" and stored.model_source == "bundled"

    # The same greedy request gives the same answer (decoding is deterministic).
    _, again = run(services, request)
    assert again.record.response == answer

    # Second turn in the same conversation, then reload the conversation from history.
    follow = ChatRequest(
        model="smollm2-135m-instruct",
        user_message="And of Italy?",
        params=GREEDY,
        history=tuple(conversation_messages([stored])),
        conversation_id=stored.conversation_id,
    )
    _, second = run(services, follow)
    assert second.record.turn == 1
    assert "What is the capital of France?" in second.record.prompt_text
    summaries = services.store.list_exchanges(limit=10)
    assert summaries[0].id == second.exchange_id
    convo = services.store.conversation(stored.conversation_id)
    assert [r.turn for r in convo] == [0, 1]
    assert conversation_messages(convo)[-1]["content"] == second.record.response


def test_seeded_sampling_is_reproducible(services) -> None:
    def sample(seed: int) -> Finished:
        sampled = SamplingParams(temperature=1.0, top_p=0.95, max_new_tokens=16, seed=seed)
        message = "Write one sentence about anything you like."
        _, finished = run(services, ChatRequest("smollm2-135m-instruct", message, params=sampled))
        assert finished.result.seed == seed
        assert services.store.get_exchange(finished.exchange_id).parameters["seed"] == seed
        return finished

    a, b = sample(1234), sample(1234)
    assert a.record.response == b.record.response
    # 16 tokens sampled at temperature 1 from an open question: other seeds, other answers.
    others = {sample(seed).record.response for seed in (1, 2)}
    assert len(others | {a.record.response}) > 1


def test_stop_string_and_stop_button(services) -> None:
    request = ChatRequest(
        model="smollm2-135m-instruct",
        user_message="Count from 1 to 20, separated by commas.",
        params=SamplingParams(temperature=0, max_new_tokens=60, stop=("5",)),
    )
    _, finished = run(services, request)
    assert finished.result.finish_reason == "stop_string"
    assert "5" not in finished.record.response

    stop = threading.Event()
    long = ChatRequest(
        model="smollm2-135m-instruct",
        user_message="Write a long story about a dragon.",
        params=SamplingParams(temperature=0, max_new_tokens=400),
    )
    events = []
    for event in services.playground.stream(long, stop):
        events.append(event)
        if isinstance(event, Delta) and len(event.text) > 20:
            stop.set()
    finished = events[-1]
    assert isinstance(finished, Finished)
    assert finished.result.finish_reason == "stopped"
    assert finished.result.completion_tokens < 400
    assert services.store.get_exchange(finished.exchange_id).finish_reason == "stopped"


def test_completion_mode_on_the_base_gemma(services) -> None:
    request = ChatRequest(
        model="gemma-3-270m",
        user_message="The capital of France is",
        params=SamplingParams(temperature=0, max_new_tokens=8),
    )
    _, finished = run(services, request)
    assert finished.record.mode == "completion"
    assert finished.record.prompt_text == "The capital of France is"
    assert finished.result.completion_tokens > 0


def test_an_abandoned_stream_stops_generating(services) -> None:
    stop = threading.Event()
    request = ChatRequest(
        model="smollm2-135m-instruct",
        user_message="Write a long story about a dragon.",
        params=SamplingParams(temperature=0, max_new_tokens=400),
    )
    stream = services.playground.stream(request, stop)
    for event in stream:
        if isinstance(event, Delta):
            break
    stream.close()  # what happens when a browser tab closes mid-answer
    assert stop.is_set()
    # The compute thread is free again: the next exchange runs and finishes normally.
    _, finished = run(
        services, ChatRequest(model="smollm2-135m-instruct", user_message="Hi", params=GREEDY)
    )
    assert finished.result.finish_reason in ("eos", "length")
