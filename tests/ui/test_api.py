"""The studio's HTTP API through gradio_client, against a launched app and the real model."""

from __future__ import annotations

import sqlite3

import pytest

pytestmark = pytest.mark.model


def test_chat_endpoint_streams_logs_and_shows_in_history(studio_server) -> None:
    from gradio_client import Client

    client = Client(studio_server.url, verbose=False)
    conversation, textbox, _status, stats, prompt = client.predict(
        "What is the capital of France?",
        "smollm2-135m-instruct",
        "none",
        "auto",
        "",
        0.0,  # greedy
        0.9,
        50,
        24,
        1.0,
        "",
        7,
        api_name="/chat",
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

    table = client.predict("capital", api_name="/history")
    rows = table["data"]
    assert rows and rows[0][2] == "smollm2-135m-instruct"
    assert "capital of France" in rows[0][4]

    db = sqlite3.connect(studio_server.home / "studio.db")
    (count,) = db.execute("select count(*) from playground_exchanges").fetchone()
    assert count >= 1


def test_invalid_setting_is_a_clear_error(studio_server) -> None:
    from gradio_client import Client

    client = Client(studio_server.url, verbose=False)
    with pytest.raises(Exception, match="Invalid setting 'seed'"):
        client.predict(
            "hi",
            "smollm2-135m-instruct",
            "none",
            "auto",
            "",
            0.7,
            0.9,
            50,
            8,
            1.0,
            "",
            -5,
            api_name="/chat",
        )
    with pytest.raises(Exception, match="less than minimum"):  # the slider's own range check
        client.predict(
            "hi",
            "smollm2-135m-instruct",
            "none",
            "auto",
            "",
            0.7,
            0.0,
            50,
            8,
            1.0,
            "",
            1,
            api_name="/chat",
        )


def test_unknown_model_offline_is_a_clear_error(studio_server) -> None:
    from gradio_client import Client

    client = Client(studio_server.url, verbose=False)
    with pytest.raises(Exception, match="offline"):
        client.predict(
            "hi",
            "someone/not-cached",
            "none",
            "auto",
            "",
            0.7,
            0.9,
            50,
            8,
            1.0,
            "",
            1,
            api_name="/chat",
        )
