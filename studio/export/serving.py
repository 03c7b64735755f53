"""`studio serve-model`: a tuned model on an OpenAI-compatible endpoint, through an existing engine.

The studio does not write a server. It plans the command of one it trusts and runs it:

- `transformers` (any machine): `transformers serve` pinned to one model — a bundled model's
  converted folder, a local folder, a cached Hub id, a GGUF file (transformers reads its config,
  tokenizer and weights from the file), or an adapter merged once into its full-precision base
  (cached under `$STUDIO_HOME/serving/`, keyed by the adapter's weights);
- `llama-cpp` (a GGUF, e.g. from `studio adapters export`): `llama_cpp.server`, the engine most
  people deploy a GGUF with, when `llama-cpp-python[server]` is installed;
- `vllm` (a CUDA GPU with vLLM installed): `vllm serve` on the base with the adapter as a LoRA
  module — no merge, the way vLLM serves many adapters on one base.

Each plan says the studio spec that evaluates the endpoint (`openai:NAME@URL/v1`), so a
comparison against the served model runs the same grid as against the local one. Serving is the
operator's: the command line only, never a visitor (SECURITY.md).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx

from studio.models.convert import ensure_converted
from studio.models.device import Hardware, detect_hardware
from studio.models.registry import ModelSource, resolve_spec
from studio.settings import Settings
from studio.tuning.export import merge_adapter

ENGINES = ("transformers", "llama-cpp", "vllm")
READY_WITHIN_S = 900.0  # a guard against a hung start, not a measurement


class ServeError(ValueError):
    """The model cannot be served this way; the message names the fix."""


@dataclass(frozen=True)
class ServePlan:
    """The server to start and how the studio reaches it."""

    engine: str
    command: list[str]
    model: str  # the `model` the server answers to
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def spec(self) -> str:
        """The model spec that evaluates this endpoint in Compare, the Playground or the CLI."""
        return f"openai:{self.model}@{self.base_url}/v1"


def plan_serving(
    spec: str,
    settings: Settings,
    engine: str | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    hardware: Hardware | None = None,
    progress: Callable[[str], None] | None = None,
) -> ServePlan:
    """The server for `spec`; the engine defaults to llama-cpp for a GGUF when installed, vLLM
    on a CUDA machine that has it, else transformers. ServeError names the fix otherwise."""
    source = resolve_spec(spec, settings.adapters_dir)
    hardware = hardware or detect_hardware()
    engine = engine or _default_engine(source, hardware)
    if engine not in ENGINES:
        raise ServeError(f"unknown engine {engine!r}; use one of {', '.join(ENGINES)}")
    if engine == "vllm":
        return _vllm(source, settings, hardware, host, port)
    if engine == "llama-cpp":
        return _llama_cpp(source, host, port)
    model = _transformers_model(source, settings, progress)
    command = [
        _tool("transformers"), "serve", model, "--host", host, "--port", str(port),
        "--device", "cuda" if hardware.cuda else "cpu",
        # bf16 only where it is native; a CPU computes in fp32 (bf16 is far slower there)
        "--dtype", "bfloat16" if hardware.bf16 else "float32",
    ]  # fmt: skip
    return ServePlan("transformers", command, model, host, port)


def _default_engine(source: ModelSource, hardware: Hardware) -> str:
    if source.kind == "gguf" and importlib.util.find_spec("llama_cpp") is not None:
        return "llama-cpp"
    if hardware.cuda and importlib.util.find_spec("vllm") is not None:
        return "vllm"
    return "transformers"


def _transformers_model(
    source: ModelSource, settings: Settings, progress: Callable[[str], None] | None
) -> str:
    """What `transformers serve` loads for `source`: a folder, a Hub id or `folder:file.gguf`."""
    if source.kind == "bundled":
        return str(ensure_converted(source, settings.models_dir, progress))
    if source.kind == "gguf":
        assert source.path is not None
        return f"{source.path.parent}:{source.path.name}"
    if source.kind == "adapter":
        assert source.path is not None
        return str(merged_for_serving(source.path, settings, progress))
    if source.kind == "local":
        return str(source.path)
    return str(source.hub_id)


def merged_for_serving(
    adapter: Path, settings: Settings, progress: Callable[[str], None] | None = None
) -> Path:
    """The adapter folded into its full-precision base, once per adapter weights: a retrained
    adapter under the same name gets a new folder, an unchanged one reuses the last merge."""
    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file():
        raise ServeError(f"{adapter} has no adapter_model.safetensors: not a PEFT adapter folder")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
    target = settings.home / "serving" / f"{adapter.name}-{digest}"
    if (target / "config.json").is_file():
        return target
    if progress:
        progress(f"Merging {adapter.name} into its base for serving (once)…")
    return merge_adapter(adapter, target, settings, progress)


def _llama_cpp(source: ModelSource, host: str, port: int) -> ServePlan:
    if source.kind != "gguf" or source.path is None:
        raise ServeError(
            f"llama.cpp serves GGUF files; {source.spec} is a {source.kind} model. Fix: export it "
            "first (`studio adapters export NAME --format gguf`) and serve the .gguf, or use "
            "--engine transformers"
        )
    if importlib.util.find_spec("llama_cpp") is None:
        raise ServeError(
            "--engine llama-cpp needs llama-cpp-python with its server: pip install "
            "'llama-cpp-python[server]' (a C++ build of several minutes, once per machine); or "
            "serve the GGUF with --engine transformers"
        )
    command = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(source.path),
        "--host", host, "--port", str(port),
    ]  # fmt: skip
    return ServePlan("llama-cpp", command, str(source.path), host, port)


def _vllm(
    source: ModelSource, settings: Settings, hardware: Hardware, host: str, port: int
) -> ServePlan:
    if not hardware.cuda:
        raise ServeError(
            "vLLM serves on a CUDA GPU and this machine has none. Fix: --engine transformers "
            "(any machine) or --engine llama-cpp for a GGUF"
        )
    if importlib.util.find_spec("vllm") is None:
        raise ServeError("--engine vllm needs vLLM installed (pip install vllm)")
    lora: list[str] = []
    model = base = source.spec
    if source.kind == "adapter":
        assert source.path is not None and source.base_spec is not None
        base_source = resolve_spec(source.base_spec, settings.adapters_dir)
        base = _transformers_model(base_source, settings, None)
        model = source.path.name
        lora = ["--enable-lora", "--lora-modules", f"{model}={source.path}"]
    elif source.kind in ("bundled", "local", "gguf"):
        base = model = _transformers_model(source, settings, None)
    command = [_tool("vllm"), "serve", base, "--host", host, "--port", str(port), *lora]
    return ServePlan("vllm", command, model, host, port)


def _tool(name: str) -> str:
    """A console script of this environment (beside the interpreter), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        raise ServeError(f"`{name}` is not installed in this environment")
    return found


def start(plan: ServePlan, log: Path) -> subprocess.Popen[bytes]:
    """Start the server with its output in `log`; the caller waits for it (wait_ready)."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "HF_HUB_OFFLINE": os.environ.get("HF_HUB_OFFLINE", "1")}
    with log.open("wb") as out:
        return subprocess.Popen(plan.command, stdout=out, stderr=subprocess.STDOUT, env=env)


def wait_ready(
    plan: ServePlan, process: subprocess.Popen[bytes], log: Path, within: float = READY_WITHIN_S
) -> None:
    """Return once the server answers /v1/models; ServeError with its log if it exits first."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise ServeError(f"the {plan.engine} server exited ({process.returncode}):\n{tail}")
        try:
            if httpx.get(f"{plan.base_url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise ServeError(f"the {plan.engine} server did not answer within {within:.0f} s; see {log}")
