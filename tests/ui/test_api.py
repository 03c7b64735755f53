"""The studio's HTTP API through gradio_client, against a launched app and the real model."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest

pytestmark = pytest.mark.model

DEFAULTS: dict[str, Any] = {
    "model_spec": "smollm2-135m-instruct",
    "quant": "none",
    "chat_mode": "auto",
    "system": "",
    "temp": 0.7,
    "p": 0.9,
    "k": 50,
    "max_new": 24,
    "rep": 1.0,
    "stop_text": "",
    "seed_value": "",
}


def chat(url: str, message: str, **settings: Any) -> tuple[Any, ...]:
    from gradio_client import Client

    client = Client(url, verbose=False)
    return client.predict(message, *{**DEFAULTS, **settings}.values(), api_name="/chat")


def test_chat_endpoint_streams_logs_and_shows_in_history(studio_server) -> None:
    from gradio_client import Client

    conversation, textbox, _status, stats, prompt = chat(
        studio_server.url, "What is the capital of France?", temp=0.0, seed_value="7"
    )
    assert textbox == ""
    assert conversation[-1]["role"] == "assistant"
    reply = conversation[-1]["content"]
    reply_text = reply if isinstance(reply, str) else reply[0]["text"]
    assert "Paris" in reply_text
    assert "seed 7" in stats and "finish:" in stats
    # The exact prompt, chat template applied (SmolLM2 adds its default system turn).
    assert prompt.rstrip().endswith("<|im_start|>assistant")
    assert "<|im_start|>user\nWhat is the capital of France?<|im_end|>" in prompt

    table = Client(studio_server.url, verbose=False).predict("capital", api_name="/history")
    rows = table["data"]
    assert rows and rows[0][2] == "smollm2-135m-instruct"
    assert "capital of France" in rows[0][4]

    db = sqlite3.connect(studio_server.home / "studio.db")
    (count,) = db.execute("select count(*) from playground_exchanges").fetchone()
    assert count >= 1


def reply_and_seed(url: str, message: str, **settings: Any) -> tuple[str, int]:
    conversation, _textbox, _status, stats, _prompt = chat(url, message, **settings)
    reply = conversation[-1]["content"]
    text = reply if isinstance(reply, str) else reply[0]["text"]
    return text, int(stats.split("seed ")[1].split()[0])


def test_blank_seed_is_random_and_recorded(studio_server) -> None:
    message, sampled = "Write one sentence about anything you like.", {"temp": 1.0, "max_new": 12}
    first, seed = reply_and_seed(studio_server.url, message, **sampled)
    _, other_seed = reply_and_seed(studio_server.url, message, **sampled)
    assert 0 <= seed < 2**32 and 0 <= other_seed < 2**32
    assert seed != other_seed  # drawn afresh each time (equal by chance: 1 in 2**32)
    # The recorded seed replays the sampled answer exactly.
    replay, replay_seed = reply_and_seed(
        studio_server.url, message, **sampled, seed_value=str(seed)
    )
    assert (replay, replay_seed) == (first, seed)
    db = sqlite3.connect(studio_server.home / "studio.db")
    rows = db.execute("select parameters from playground_exchanges order by id desc limit 3")
    recorded = [json.loads(params)["seed"] for (params,) in rows]
    db.close()
    assert recorded == [seed, other_seed, seed]  # newest first


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"seed_value": "-5"}, "Invalid setting 'seed'"),
        ({"seed_value": "abc"}, "'abc' is not a whole number"),
        ({"p": 0.0}, "less than minimum"),  # the slider's own range check
        ({"model_spec": "someone/not-cached"}, "offline"),
        ({"model_spec": "./no/such/dir"}, "does not exist"),
        ({"model_spec": "gemma-3-270m", "chat_mode": "chat"}, "no chat template"),
    ],
)
def test_bad_input_is_a_clear_error(studio_server, settings, message) -> None:
    with pytest.raises(Exception, match=message):
        chat(studio_server.url, "hi", max_new=4, **settings)
