"""Convert a GGUF checkpoint once into a safetensors model folder cached under STUDIO_HOME.

Loading a GGUF through transformers dequantizes every tensor on every load (about 20 s for
SmolLM2, about a minute for Gemma-3-270M); a converted folder loads in about a second.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

from studio.models.errors import ModelLoadError, ModelNotFoundError
from studio.models.registry import ModelSource

Progress = Callable[[str], None]
_MARKER = "studio-conversion.json"


def converted_dir(source: ModelSource, models_dir: Path) -> Path:
    """The cache folder a GGUF source converts into (stable for the same file)."""
    if source.bundled is not None:
        return models_dir / source.bundled.alias
    assert source.path is not None
    stat = source.path.stat()
    key = f"{source.path}|{stat.st_size}|{int(stat.st_mtime)}"
    digest = hashlib.sha1(key.encode()).hexdigest()[:10]
    return models_dir / f"{source.path.stem}-{digest}"


def is_converted(folder: Path) -> bool:
    return (folder / _MARKER).is_file() and (folder / "config.json").is_file()


def ensure_converted(
    source: ModelSource, models_dir: Path, progress: Progress | None = None
) -> Path:
    """Return a loadable folder for a bundled or .gguf source, converting it the first time."""
    target = converted_dir(source, models_dir)
    if is_converted(target):
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    # A file lock, so two processes (web server, a training job) never convert into one folder.
    with FileLock(str(target) + ".lock", timeout=1800):
        if is_converted(target):
            return target
        gguf = _gguf_file(source, models_dir)
        if progress:
            progress(f"Converting {gguf.name} to safetensors (first use only)…")
        _convert(gguf, target)
    return target


def _gguf_file(source: ModelSource, models_dir: Path) -> Path:
    if source.bundled is not None:
        path = source.bundled.gguf_path(models_dir / "_gguf")
        if path is None:
            raise ModelNotFoundError(
                f"Bundled model '{source.bundled.alias}' is not installed. "
                f"Fix: {source.bundled.install}."
            )
        return path
    assert source.path is not None
    return source.path


def _convert(gguf: Path, target: Path) -> None:
    # lazy: transformers is slow to import; only model work needs it
    from transformers import AutoModelForCausalLM, AutoTokenizer

    work = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        try:
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        except (ValueError, KeyError, RuntimeError) as exc:
            raise ModelLoadError(
                f"transformers cannot read '{gguf}': {exc}. Fix: use a GGUF whose architecture "
                "transformers supports (llama, mistral, qwen2, gemma3, …) or a safetensors folder."
            ) from exc
        # The dequantized weights are plain tensors; detach the GGUF quantizer so they save as such.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(work)
        tokenizer.save_pretrained(work)
        (work / _MARKER).write_text(json.dumps({"gguf": str(gguf)}, indent=2))
        if target.exists():
            shutil.rmtree(target)
        work.rename(target)  # atomic on one filesystem: a crash never leaves a half folder in use
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
