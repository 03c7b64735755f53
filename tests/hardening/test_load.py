"""Ten concurrent gradio_client users against one real `python app.py` (loopback): each sends a
Playground message with its own text and seed, and starts a small comparison of its own size
and name. Every request completes, and every user sees only its own answer and its own run."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from studio.ui.compare.form import FORM_FIELDS
from tests.conftest import ROOT
from tests.hardening.conftest import files_under

pytestmark = pytest.mark.model

USERS = 10
REVIEWS = str(ROOT / "studio" / "samples" / "reviews.csv")
WORDS = ["apple", "river", "castle", "violet", "thunder", "pepper", "marble", "falcon", "cedar",
         "lantern"]  # fmt: skip
TOKEN = "hf_loadSuiteSecret1234567890abcd"


def compare_args(name: str, limit: int, batch_rows: int = 4) -> list[Any]:
    """The Compare tab's Start inputs, in order: the grid filter, then the set-up form."""
    form = {
        "data": REVIEWS,
        "shot_pool": "",
        "templates": ["reviews-sentiment"],
        "models": ["smollm2-135m-instruct"],
        "shots": "0",
        "seeds": "0",
        "limit": limit,
        "pool_size": 100,
        "scoring": "loglik",
        "selection": "first",
        "quantization": "none",
        "metric": "exact",
        "regex": "",
        "max_new_tokens": 16,
        "temperature": 0.0,
        "batch_rows": batch_rows,
        "label_column": "",
        "column_map": "",
        "name": name,
        "calibrate": False,
        "judge": None,
        "judge_template": None,
        "judge_mode": "pointwise",
        "samples": 1,
    }
    assert tuple(form) == FORM_FIELDS  # the API takes the whole form, in order
    return ["all", *form.values()]


def chat_args(message: str, seed: int) -> list[Any]:
    """The Playground's /chat inputs (see tests/ui/test_api.py)."""
    return [message, "smollm2-135m-instruct", "none", "auto", "", 0.7, 0.9, 50, 8, 1.0, "",
            str(seed)]  # fmt: skip


@dataclass
class Outcome:
    user: int
    message: str
    reply: str
    stats: str
    prompt: str
    status: str
    results_header: str


def _user(url: str, user: int) -> Outcome:
    from gradio_client import Client

    client = Client(url, verbose=False)  # one client, one session, per user
    message = f"User {user}: write one sentence about the word {WORDS[user]}."
    conversation, _box, _status, stats, prompt = client.predict(
        *chat_args(message, seed=1000 + user), api_name="/chat"
    )
    reply = conversation[-1]["content"]
    reply = reply if isinstance(reply, str) else reply[0]["text"]
    assert conversation[-2]["content"] in (message, [{"type": "text", "text": message}])
    outputs = client.predict(*compare_args(f"load-user-{user}", limit=1 + user % 2),
                             api_name="/compare")  # fmt: skip
    return Outcome(user, message, reply, stats, prompt, outputs[2], outputs[3])


def test_ten_concurrent_users_each_get_their_own_answers(make_server) -> None:
    server = make_server(env={"HF_TOKEN": TOKEN})
    with ThreadPoolExecutor(USERS) as pool:
        outcomes = list(pool.map(lambda u: _user(server.url, u), range(USERS)))
    assert len(outcomes) == USERS

    db = sqlite3.connect(server.home / "studio.db")
    runs = {
        run_id: (name, n, status)
        for run_id, name, n, status in db.execute(
            "select id, name, n_examples, status from comparison_runs"
        )
    }
    exchanges = {
        message: json.loads(parameters)["seed"]
        for message, parameters in db.execute(
            "select user_message, parameters from playground_exchanges"
        )
    }
    assert len(runs) == USERS and len(exchanges) == USERS
    for o in outcomes:
        # The Playground: its own message in the exact prompt, its own seed, nobody else's text.
        assert f"seed {1000 + o.user}" in o.stats
        assert o.message in o.prompt
        others = [w for i, w in enumerate(WORDS) if i != o.user]
        assert not any(f"word {w}." in o.prompt for w in others)
        assert o.reply.strip()
        assert exchanges[o.message] == 1000 + o.user
        # Compare: the run it was told about is its own (name and size), and it completed.
        limit = 1 + o.user % 2
        run_id = int(o.status.split("Run #")[1].split()[0])
        assert o.status == f"✓ Run #{run_id} completed: {limit}/{limit} rows."
        assert runs[run_id] == (f"load-user-{o.user}", limit, "completed")
        assert f"load-user-{o.user}" in o.results_header
    assert len({int(o.status.split("Run #")[1].split()[0]) for o in outcomes}) == USERS
    server.stop()
    for name in files_under(server.home):  # the token in the server's environment leaked nowhere
        path = server.home / name
        if path.is_file() and not path.is_symlink():
            assert TOKEN.encode() not in path.read_bytes(), name
