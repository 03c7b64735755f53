"""`studio serve-model`: the server planned for each kind of spec (and refused, with the fix, where
an engine cannot serve it), and a tuned adapter served for real by `transformers serve` through
the command, evaluated with the same grid as the local adapter: the answers are the same."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from studio.compare.config import build_config
from studio.export.serving import ServeError, merged_for_serving, plan_serving
from studio.models.device import Hardware
from studio.settings import SAMPLES_DIR, load_settings
from tests import needs
from tests.tuning.test_gguf import small_random_adapter

SMOL = "smollm2-135m-instruct"
CPU, GPU = Hardware(cuda=False, bf16=False), Hardware(cuda=True, bf16=True)
READY_WITHIN_S = 600  # a guard against a hung start on a busy machine, not a measurement


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def served_home(tmp_path_factory, model_home) -> Iterator[tuple[object, Path]]:
    home = tmp_path_factory.mktemp("serve-home")
    (model_home / "models").mkdir(parents=True, exist_ok=True)
    os.symlink(model_home / "models", home / "models")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        settings = load_settings(home=home, offline=True, adapters_dir=home / "adapters")
        yield settings, small_random_adapter(settings)


@pytest.mark.model
def test_each_spec_gets_the_server_that_can_serve_it(served_home, tmp_path) -> None:
    settings, adapter = served_home
    bundled = plan_serving(SMOL, settings, hardware=CPU, port=8123)
    assert bundled.engine == "transformers" and bundled.command[1:3] == [
        "serve", str(settings.models_dir / SMOL),
    ]  # fmt: skip
    assert bundled.command[-4:] == ["--device", "cpu", "--dtype", "float32"]  # never bf16 on CPU
    assert bundled.spec == f"openai:{settings.models_dir / SMOL}@http://127.0.0.1:8123/v1"
    assert plan_serving(SMOL, settings, hardware=GPU, engine="transformers").command[-3:] == [
        "cuda", "--dtype", "bfloat16",
    ]  # fmt: skip
    merged = plan_serving("adapters/demo", settings, hardware=CPU)
    folder = Path(merged.model)
    assert folder.parent == settings.home / "serving" and (folder / "config.json").is_file()
    assert merged_for_serving(adapter, settings) == folder  # merged once, reused
    gguf = tmp_path / "model-q8_0.gguf"
    gguf.write_bytes(b"GGUF")
    assert plan_serving(str(gguf), settings, engine="transformers", hardware=CPU).model == (
        f"{tmp_path}:model-q8_0.gguf"
    )


@pytest.mark.model
@pytest.mark.parametrize(
    ("spec", "engine", "hardware", "fix"),
    [
        (SMOL, "vllm", CPU, "--engine transformers"),
        (SMOL, "llama-cpp", CPU, "studio adapters export NAME --format gguf"),
        (SMOL, "tgi", CPU, "use one of transformers, llama-cpp, vllm"),
    ],
)
def test_an_engine_that_cannot_serve_says_what_can(served_home, spec, engine, hardware, fix):
    settings, _ = served_home
    with pytest.raises(ServeError, match=fix):
        plan_serving(spec, settings, engine=engine, hardware=hardware)


@pytest.mark.model
def test_a_served_adapter_answers_as_the_local_adapter(served_home) -> None:
    needs.package("openai", "transformers serve needs it")
    settings, _ = served_home
    port = free_port()
    command = [sys.executable, "-m", "studio.cli.main", "serve-model", "adapters/demo"]
    env = {**os.environ, "STUDIO_HOME": str(settings.home), "HF_HUB_OFFLINE": "1"}
    server = subprocess.Popen(
        [*command, "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=env, cwd=settings.home, text=True,
    )  # fmt: skip
    try:
        spec = _served_spec(server)
        from studio.services import create_services

        services = create_services(settings)
        try:
            config = build_config(
                data=str(SAMPLES_DIR / "reviews.csv"),
                templates=["reviews-sentiment"],
                models=["adapters/demo", f"{spec}?timeout=600&parallel=1"],
                scoring="generate",
                max_new_tokens=4,
                limit=3,
            )
            events = list(services.comparisons.run(config))
            assert events[-1].status == "completed"
            run = services.store.get_comparison_run(events[-1].run_id)
            local, remote = ([r for r in services.store.comparison_results(run.id)
                              if r.config_id == cfg.id] for cfg in run.configs)  # fmt: skip
            assert [r.output for r in remote] == [r.output for r in local]
            assert [r.correct for r in remote] == [r.correct for r in local]
        finally:
            services.close()
    finally:
        server.terminate()
        server.wait(timeout=30)


def _served_spec(server: subprocess.Popen) -> str:
    """The openai: spec the command prints once its server answers."""
    deadline, seen = time.monotonic() + READY_WITHIN_S, []
    assert server.stdout is not None
    while time.monotonic() < deadline:
        line = server.stdout.readline()
        if not line and server.poll() is not None:
            pytest.fail("studio serve-model exited:\n" + "".join(seen))
        seen.append(line)
        if line.startswith("openai:"):
            return line.strip()
    pytest.fail("studio serve-model did not print a spec:\n" + "".join(seen))
