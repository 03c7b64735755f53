"""Log-likelihood scoring through the HTTP backend, against a test server with real logprobs.

`transformers serve` ignores `echo` and `logprobs` (the studio refuses it, see
test_openai_serve.py); vLLM returns them but cannot run here. So this file starts
`PromptLogprobTestServer`: a TEST server, not a product, that answers `/v1/completions` with
`echo: true, logprobs: N` as vLLM does (per-token `token_logprobs` and character `text_offset`),
computed with the bundled SmolLM2 loaded by the studio. The scores the studio stores through it
must equal the studio's own local log-likelihood scoring of the same prompts.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from studio.compare.config import build_config
from studio.compare.engine import RunFinished
from studio.inference.openai_backend import ServedModelError
from studio.models.loading import LoadRequest
from studio.runtime import compute
from studio.services import create_services
from tests import needs
from tests.conftest import SHARED_DATA

pytestmark = pytest.mark.model

SST2 = SHARED_DATA / "sst2"
LOCAL = "smollm2-135m-instruct"
SERVED_NAME = "smollm2-test"
KEY = "sk-studio-test-0123456789"
KEY_ENV = "INSTRUCT_TEST_SERVED_KEY"  # never STUDIO_*: the policy refuses those
# Patient requests, one at a time: the tests share a few CPU cores with everything else.
SLOW = "timeout=900&parallel=1"


def prompt_logprobs(loaded: Any, text: str) -> tuple[list[str], list[float | None], list[int]]:
    """Tokens of text, each one's log-probability given those before it (None for the first),
    and each one's character offset as vLLM reports it (length of the text decoded before it)."""
    import torch

    tokenizer, model = loaded.tokenizer, loaded.model
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    with torch.inference_mode():
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    values: list[float | None] = [None]
    values += [float(logprobs[i - 1, ids[i]]) for i in range(1, len(ids))]
    offsets = [len(tokenizer.decode(ids[:i])) for i in range(len(ids))]
    return [tokenizer.decode([i]) for i in ids], values, offsets


@dataclass
class PromptLogprobTestServer:
    """Serves /v1/models and /v1/completions (echo + logprobs only) on 127.0.0.1."""

    loaded: Any
    api_key: str | None = None

    def start(self) -> str:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                if owner.refuse(self):
                    return
                owner.reply(self, 200, {"object": "list", "data": [{"id": SERVED_NAME}]})

            def do_POST(self) -> None:
                if owner.refuse(self):
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path != "/v1/completions" or not body.get("echo"):
                    owner.reply(self, 400, {"error": {"message": "this test server only echoes"}})
                    return
                owner.reply(self, 200, owner.completion(body))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def refuse(self, handler: BaseHTTPRequestHandler) -> bool:
        if self.api_key and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.reply(handler, 401, {"error": {"message": "Incorrect API key provided."}})
            return True
        return False

    def reply(self, handler: BaseHTTPRequestHandler, status: int, data: dict) -> None:
        payload = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    def completion(self, body: dict) -> dict:
        prompts = body["prompt"] if isinstance(body["prompt"], list) else [body["prompt"]]
        choices = []
        for index, text in enumerate(prompts):
            tokens, values, offsets = compute.run(prompt_logprobs, self.loaded, text)
            choices.append(
                {
                    "index": index,
                    "text": text,  # echo; no token generated beyond it (max_tokens is ignored)
                    "finish_reason": "length",
                    "logprobs": {
                        "tokens": tokens,
                        "token_logprobs": values,
                        "text_offset": offsets,
                    },
                }
            )
        return {"object": "text_completion", "model": SERVED_NAME, "choices": choices}


@pytest.fixture
def services(settings):
    needs.shared_data("sst2", "validation.tsv")
    services = create_services(settings)
    yield services
    services.close()


@pytest.fixture
def logprob_server(services) -> Iterator[tuple[PromptLogprobTestServer, str]]:
    server = PromptLogprobTestServer(services.models.get(LoadRequest(LOCAL)))
    url = server.start()
    yield server, url
    server.stop()


def grid(*models: str, template: str = "sst2-sentiment-completion", shots: int = 1) -> Any:
    return build_config(
        data=str(SST2 / "validation.tsv"),
        shot_pool=str(SST2 / "train.tsv"),
        templates=[template],
        models=list(models),
        shots=[shots],
        limit=4,
        scoring="loglik",
        batch_rows=4,
    )


def test_served_log_likelihoods_equal_the_studios_local_scoring(services, logprob_server) -> None:
    _, url = logprob_server
    spec = f"openai:{SERVED_NAME}@{url}?{SLOW}"
    events = list(services.comparisons.run(grid(spec, LOCAL)))
    assert isinstance(events[-1], RunFinished) and events[-1].status == "completed"
    run = services.store.get_comparison_run(events[-1].run_id)
    served_cfg, local_cfg = run.configs
    assert served_cfg.model_spec == spec
    results = services.store.comparison_results(run.id)
    assert len(results) == 8  # one row per example and model, none twice
    served = {r.example_index: r for r in results if r.config_id == served_cfg.id}
    local = {r.example_index: r for r in results if r.config_id == local_cfg.id}
    assert sorted(served) == sorted(local) == list(range(4))
    for index, remote in served.items():
        here = local[index]
        # Both scored the template's two choices, in its order (an empty list would match too).
        assert [a["choice"] for a in remote.choice_scores] == ["negative", "positive"]
        assert [b["choice"] for b in here.choice_scores] == ["negative", "positive"]
        assert remote.prompt_text == here.prompt_text
        assert remote.prompt_tokens == here.prompt_tokens
        assert (remote.prediction, remote.correct, remote.correct_norm) == (
            here.prediction,
            here.correct,
            here.correct_norm,
        )
        for a, b in zip(remote.choice_scores, here.choice_scores, strict=True):
            assert a["choice"] == b["choice"] and a["length"] == b["length"]
            assert a["logprob"] == pytest.approx(b["logprob"], abs=1e-3)


def test_chat_templates_are_refused_for_served_log_likelihood(services, logprob_server) -> None:
    _, url = logprob_server
    with pytest.raises(ServedModelError, match="needs completion-mode templates"):
        list(
            services.comparisons.run(
                grid(f"openai:{SERVED_NAME}@{url}?{SLOW}", template="sst2-sentiment")
            )
        )
    assert services.store.list_comparison_runs() == []


def test_the_key_comes_from_the_named_variable_and_is_never_stored(
    services, logprob_server, settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    server, url = logprob_server
    server.api_key = KEY
    without = f"openai:{SERVED_NAME}@{url}?{SLOW}"
    with pytest.raises(ServedModelError, match=r"HTTP 401.*add \?key_env=NAME"):
        list(services.comparisons.run(grid(without, shots=0)))
    spec = f"openai:{SERVED_NAME}@{url}?key_env={KEY_ENV}&{SLOW}"
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(ServedModelError, match=f"{KEY_ENV}, which is not set"):
        list(services.comparisons.run(grid(spec, shots=0)))
    monkeypatch.setenv(KEY_ENV, "sk-wrong")
    with pytest.raises(ServedModelError, match=f"the key in {KEY_ENV} was refused") as info:
        list(services.comparisons.run(grid(spec, shots=0)))
    assert "sk-wrong" not in str(info.value)
    assert services.store.list_comparison_runs() == []

    monkeypatch.setenv(KEY_ENV, KEY)
    events = list(services.comparisons.run(grid(spec, shots=0)))
    assert events[-1].status == "completed"
    [run] = services.store.list_comparison_runs()
    assert run.configs[0].model_spec == spec and run.results_done == 4
    if settings.database_url.startswith("sqlite"):  # the database file, WAL included
        stored = b"".join(p.read_bytes() for p in settings.home.glob("studio.db*"))
        assert KEY.encode() not in stored and KEY_ENV.encode() in stored
