"""Hosting settings in the UI, mostly against real servers (`python app.py` / `studio serve` in
subprocesses): demo mode refuses an oversized comparison and a tuning launch through
gradio_client, STUDIO_AUTH turns strangers away and lets the right credentials in, `--inbrowser`
opens the browser, and the Gradio queue follows STUDIO_CONCURRENCY / STUDIO_QUEUE_SIZE.

None of these loads a model: every refusal happens before one would be."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from studio.settings import load_settings
from studio.ui.compare.form import FORM_FIELDS
from tests.conftest import ROOT
from tests.ui.conftest import run_studio

STUDIO = str(Path(sys.executable).with_name("studio"))
REVIEWS = str(ROOT / "studio" / "samples" / "reviews.csv")
PASSWORD = "hunter2-not-in-logs"


@contextlib.contextmanager
def serving(home: Path, command: list[str], **env: str) -> Iterator[str]:
    """Run the studio with `env` added; yield its URL once the first page answers."""
    with run_studio(home, command=command, **env) as server:
        yield server.url


def compare_inputs(**values: Any) -> list[Any]:
    """The /compare endpoint's inputs: the results view, then the Compare form in order."""
    form: dict[str, Any] = {
        "data": REVIEWS,
        "shot_pool": "",
        "templates": ["reviews-sentiment"],
        "models": ["smollm2-135m-instruct"],
        "shots": "0,2",
        "seeds": "1",
        "limit": None,
        "pool_size": 20,
        "scoring": "loglik",
        "selection": "first",
        "quantization": "none",
        "metric": "exact",
        "regex": "",
        "max_new_tokens": 16,
        "temperature": 0.0,
        "batch_rows": 16,
        "label_column": "",
        "column_map": "",
        "name": "",
        "calibrate": False,
        "judge": None,
        "judge_template": None,
        "judge_mode": "pointwise",
        "samples": 1,
    }
    assert tuple(form) == FORM_FIELDS  # the API takes the whole form, in order
    return ["all", *{**form, **values}.values()]


def tune_inputs(**values: Any) -> list[Any]:
    """The /tune_launch endpoint's inputs: the Tune form's fields, at their defaults unless
    given (a small, valid run on the sample reviews)."""
    from studio.ui.tune.form import FORM_FIELDS, default

    given: dict[str, Any] = {
        "name": "demo-adapter",
        "overwrite": False,
        "data": REVIEWS,
        "limit": 8,
        "template": "reviews-sentiment",
        "column_map": "",
        "max_steps": 1,
        "eval_steps": 0,
        "prompt_loss": False,
        **values,
    }
    return [given[name] if name in given else default(name) for name in FORM_FIELDS]


def counts(db: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(db)) as connection:
        (comparisons,) = connection.execute("select count(*) from comparison_runs").fetchone()
        (tunings,) = connection.execute("select count(*) from tuning_runs").fetchone()
    return comparisons, tunings


def test_demo_mode_refuses_big_comparisons_and_training_over_the_api(tmp_path: Path) -> None:
    from gradio_client import Client

    home = tmp_path / "home"
    command = [sys.executable, "app.py"]
    with serving(home, command, STUDIO_DEMO="1", STUDIO_DEMO_MAX_EXAMPLES="10") as url:
        client = Client(url, verbose=False)
        # 40 evaluation rows × 2 configurations = 80 scored rows > 10.
        with pytest.raises(Exception, match=r"a public demo scores at most 10") as caught:
            client.predict(*compare_inputs(), api_name="/compare")
        assert "40 examples × 2 configurations = 80 rows" in str(caught.value)

        status, *_ = client.predict(*tune_inputs(), api_name="/tune_launch")
        assert "demo-no-training" in status and "training is switched off" in status

        with urllib.request.urlopen(url + "config", timeout=10) as response:
            config = response.read().decode()
        assert "tune-demo" in config and "Public demo" in config
    assert counts(home / "studio.db") == (0, 0)  # nothing was stored
    assert not (home / "tuning").exists() or not any((home / "tuning").iterdir())


def test_login_turns_strangers_away_and_lets_users_in(tmp_path: Path) -> None:
    from gradio_client import Client
    from gradio_client.exceptions import AuthenticationError

    home = tmp_path / "home"
    users = f"alice:{PASSWORD},bob:other:pass"
    with serving(home, [sys.executable, "app.py"], STUDIO_AUTH=users) as url:
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url + "config", timeout=10)
        assert denied.value.code == 401
        with pytest.raises(AuthenticationError, match="credentials were not provided"):
            Client(url, verbose=False)
        with pytest.raises(ValueError, match="Could not login"):
            Client(url, auth=("alice", "wrong"), verbose=False)

        for user, password in (("alice", PASSWORD), ("bob", "other:pass")):
            client = Client(url, auth=(user, password), verbose=False)
            table, _picked = client.predict(None, api_name="/library")
            assert "reviews-sentiment" in [row[0] for row in table["data"]]
    log = (home / "server.log").read_text()
    assert PASSWORD not in log and "other:pass" not in log


def test_bad_auth_stops_the_server_naming_the_variable(tmp_path: Path) -> None:
    env = {**os.environ, "STUDIO_HOME": str(tmp_path), "STUDIO_AUTH": f"alice{PASSWORD}"}
    done = subprocess.run(
        [sys.executable, "app.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0
    assert "STUDIO_AUTH" in done.stderr and "user:password" in done.stderr
    assert PASSWORD not in done.stderr + done.stdout


def test_serve_inbrowser_opens_the_studio_in_the_browser(tmp_path: Path) -> None:
    opened = tmp_path / "opened.txt"
    browser = tmp_path / "browser"
    # Python's webbrowser runs $BROWSER with the URL: this one writes it down.
    browser.write_text(f'#!/bin/sh\necho "$1" >> {opened}\n')
    browser.chmod(0o755)
    home = tmp_path / "home"
    with serving(home, [STUDIO, "serve", "--inbrowser"], BROWSER=str(browser)) as url:
        deadline = time.monotonic() + 30
        while not opened.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert opened.exists(), (home / "server.log").read_text()[-2000:]
        [link] = opened.read_text().split()
        assert link.rstrip("/") == url.rstrip("/")
        with urllib.request.urlopen(link, timeout=10) as response:
            assert response.status == 200 and "Instruct Studio" in response.read().decode()


def test_the_gradio_queue_follows_the_settings(tmp_path: Path) -> None:
    from studio.services import create_services
    from studio.ui import build_app

    settings = load_settings(home=tmp_path, offline=True, concurrency=3, queue_size=7)
    services = create_services(settings)
    try:
        app = build_app(services)
        assert app._queue.default_concurrency_limit == 3
        assert app._queue.max_size == 7
    finally:
        services.close()
