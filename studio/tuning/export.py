"""Take an adapter out of the studio: merge it into a standalone model, export it for deployment
(a merged folder, or a GGUF with an Ollama Modelfile: studio/tuning/gguf.py), or push it to the Hub.

Merging and exporting write into a hidden temp folder next to the output and rename it at the
end, so a failed or interrupted export never leaves a half-written model behind. Every export
folder holds `export.json`, its lineage (adapter, base, type, file, sha256, later the parity
run). Pushing needs a token (argument or HF_TOKEN); the token is handed to huggingface_hub and
never printed or stored.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from studio import __version__
from studio.models.adapters import AdapterError, AdapterInfo, read_adapter
from studio.models.device import DevicePlan, plan_device
from studio.models.loading import LoadRequest, load_model
from studio.runtime import compute
from studio.settings import hub_offline_forced
from studio.tuning.card import write_text_atomic
from studio.tuning.gguf import (
    CONVERTER_PACKAGE,
    ExportError,
    GgufInfo,
    check_quant,
    convert_folder,
    converter_script,
    default_system,
    modelfile_text,
    read_gguf,
    sha256_file,
)

if TYPE_CHECKING:
    from studio.settings import Settings

_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")


def merge_adapter(
    folder: Path, out_dir: Path, settings: Settings, progress: Callable[[str], None] | None = None
) -> Path:
    """Fold the adapter into its full-precision base and save the result as a plain model."""

    info = read_adapter(folder)
    out_dir = Path(out_dir).expanduser().resolve()
    _refuse_overwrite(out_dir)
    # Merging into quantized weights would round the LoRA update away: load the base unquantized.
    dtype = merge_dtype(plan_device())
    request = LoadRequest(str(info.path.resolve()), quantization="none", dtype=dtype)
    # On the compute thread, like every model load in a server process (studio/runtime/compute.py).
    loaded = compute.run(load_model, request, settings, progress)
    if progress:
        progress(f"Merging {info.name} and saving to {out_dir}…")
    merged = compute.run(loaded.model.merge_and_unload)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        merged.save_pretrained(work)
        loaded.tokenizer.save_pretrained(work)
        write_text_atomic(work / "README.md", _merged_readme(info, loaded.base_location, merged))
        _refuse_overwrite(out_dir)  # someone may have written there while we merged
        if out_dir.exists():
            out_dir.rmdir()  # empty (checked above); rename cannot replace it portably
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return out_dir


FORMATS = ("gguf", "merged")
MANIFEST = "export.json"


@dataclass(frozen=True)
class Export:
    """One export of an adapter, as written to `export.json` beside it."""

    adapter: str
    adapter_path: str
    adapter_run_id: int | None  # the tuning run that trained it, when the studio did
    base_model: str
    format: str  # gguf | merged
    quant: str | None  # f16, q8_0, q4_0 for a GGUF
    path: str  # the .gguf file, or the merged folder
    folder: str
    sha256: str | None  # of the .gguf file, or of the merged model.safetensors
    chat_template: bool  # the file carries the base's chat template
    converter: str | None = None
    studio_version: str = __version__
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat())
    parity: dict[str, Any] | None = None  # the parity check's run and figures, once run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def default_export_dir(home: Path, name: str, fmt: str, quant: str | None) -> Path:
    """Where an export goes without --output: STUDIO_HOME/exports/NAME-QUANT (or NAME-merged)."""
    return home / "exports" / f"{name}-{quant if fmt == 'gguf' else 'merged'}"


def check_export(fmt: str, quant: str | None) -> str | None:
    """The export's quantization type (None for a merged folder); bad pairs refused by name."""
    if fmt not in FORMATS:
        raise ExportError(f"--format {fmt!r} is not an export format. Fix: use gguf or merged")
    if fmt == "merged":
        if quant:
            raise ExportError(
                "--quant applies to --format gguf; a merged folder keeps full precision. "
                "Fix: drop --quant, or use --format gguf"
            )
        return None
    quant = check_quant(quant or "f16")
    converter_script()  # missing converter: refused before anything is merged or written
    return quant


def export_adapter(
    folder: Path,
    fmt: str,
    quant: str | None,
    out_dir: Path,
    settings: Settings,
    progress: Callable[[str], None] | None = None,
) -> Export:
    """Export the adapter as a merged folder or a GGUF (+ Modelfile, card, export.json)."""
    quant = check_export(fmt, quant)
    info = read_adapter(folder)
    out_dir = Path(out_dir).expanduser().resolve()
    _refuse_overwrite(out_dir)
    say = progress or (lambda message: None)
    if quant is None:
        merged = merge_adapter(folder, out_dir, settings, progress)
        weights = merged / "model.safetensors"
        sha = sha256_file(weights) if weights.is_file() else None
        export = _record(info, "merged", None, merged, merged, sha, _has_chat(merged))
        write_manifest(export)
        return export
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        gguf = work / f"{info.name}-{quant}.gguf"
        convert_folder(merge_adapter(folder, work / "merged", settings, progress), gguf, quant, say)
        shutil.rmtree(work / "merged")
        meta = read_gguf(gguf)
        (work / "Modelfile").write_text(
            modelfile_text(gguf.name, meta, _system(info, meta)), encoding="utf-8"
        )
        final = out_dir / gguf.name
        chat = meta.chat_template is not None
        export = _record(info, "gguf", quant, final, out_dir, sha256_file(gguf), chat)
        (work / "README.md").write_text(_gguf_readme(export, meta), encoding="utf-8")
        (work / MANIFEST).write_text(json.dumps(export.to_dict(), indent=2), encoding="utf-8")
        _refuse_overwrite(out_dir)  # someone may have written there while we converted
        if out_dir.exists():
            out_dir.rmdir()
        os.replace(work, out_dir)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return export


def _record(
    info: AdapterInfo,
    fmt: str,
    quant: str | None,
    path: Path,
    folder: Path,
    sha: str | None,
    chat: bool,
) -> Export:
    return Export(
        adapter=info.name,
        adapter_path=str(info.path.resolve()),
        adapter_run_id=info.card.run_id if info.card else None,
        base_model=info.base_model,
        format=fmt,
        quant=quant,
        path=str(path),
        folder=str(folder),
        sha256=sha,
        chat_template=chat,
        converter=CONVERTER_PACKAGE if fmt == "gguf" else None,
    )


def write_manifest(export: Export) -> Path:
    """(Re)write the export's lineage file, atomically."""
    path = Path(export.folder) / MANIFEST
    write_text_atomic(path, json.dumps(export.to_dict(), indent=2))
    return path


def read_manifest(folder: Path) -> Export:
    path = Path(folder) / MANIFEST
    try:
        return Export(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError) as exc:
        raise ExportError(f"{path}: not a readable export record ({exc})") from None


def _has_chat(folder: Path) -> bool:
    config = folder / "tokenizer_config.json"
    has_config = config.is_file() and "chat_template" in config.read_text(encoding="utf-8")
    return (folder / "chat_template.jinja").is_file() or has_config


def _system(info: AdapterInfo, meta: GgufInfo) -> str | None:
    """The adapter's training system prompt when it is plain text, else the template's default."""
    card = info.card
    spec = yaml.safe_load(card.template_yaml) if card and card.template_yaml else None
    if isinstance(spec, dict) and spec.get("mode", "chat") == "chat":
        system = spec.get("system")
        if isinstance(system, str) and system.strip() and "{" not in system:
            return system.strip()
    return default_system(meta.chat_template)


def _gguf_readme(export: Export, meta: GgufInfo) -> str:
    name = Path(export.path).name
    template = "carried (tokenizer.chat_template)" if meta.chat_template else "none in the base"
    types = ", ".join(f"{k} × {v}" for k, v in sorted(meta.tensor_types.items()))
    return (
        f"# {export.adapter} ({export.quant} GGUF)\n\n"
        f"The LoRA adapter **{export.adapter}** merged into its base **{export.base_model}** in "
        "full precision (PEFT `merge_and_unload()`), converted with llama.cpp's converter "
        f"(`{export.converter}`) to GGUF **{export.quant}**.\n\n"
        f"- File: `{name}` (sha256 `{export.sha256}`)\n"
        f"- Architecture: {meta.architecture}; tensors: {types}\n"
        f"- Chat template: {template}\n"
        f"- Adapter folder: `{export.adapter_path}`\n\n"
        "Run it:\n\n"
        "```bash\n"
        f"llama-cli -m {name} -cnv          # llama.cpp\n"
        f"ollama create {export.adapter} -f Modelfile && ollama run {export.adapter}\n"
        f"studio compare --model {name} ...    # the studio reads GGUF files as models\n"
        "```\n\n"
        "`export.json` holds the lineage and, after `--check`, the parity run against the "
        "adapter.\n"
    )


def merge_dtype(plan: DevicePlan) -> str:
    """The dtype an adapter is merged in: bf16 on a GPU that computes in it (the plan's 'auto'
    dtype), else fp32; fp16 would lose precision in the merged sum."""
    return "bfloat16" if plan.is_cuda and plan.bf16 else "float32"


def _refuse_overwrite(out_dir: Path) -> None:
    if out_dir.is_file() or (out_dir.is_dir() and any(out_dir.iterdir())):
        raise AdapterError(
            f"{out_dir} already exists and is not empty; merging will not overwrite it. "
            "Fix: choose a new --output folder, or delete that one first."
        )


def _merged_readme(info: AdapterInfo, base_location: str | None, model: Any) -> str:
    card = info.card
    data = f"{card.dataset_name} (hash {card.dataset_hash})" if card else "unknown (foreign)"
    return (
        f"# {info.name} (merged)\n\n"
        f"The LoRA adapter **{info.name}** merged into its base model **{info.base_model}** "
        f"(weights from `{base_location}`) with PEFT's `merge_and_unload()`, saved in "
        f"{str(model.dtype).removeprefix('torch.')}. It needs neither PEFT nor the adapter "
        "folder:\n\n"
        "```python\n"
        "from transformers import AutoModelForCausalLM, AutoTokenizer\n\n"
        'model = AutoModelForCausalLM.from_pretrained("path/to/this/folder")\n'
        'tokenizer = AutoTokenizer.from_pretrained("path/to/this/folder")\n'
        "```\n\n"
        f"- Adapter folder: `{info.path}`\n"
        f"- Training data: {data}\n"
        "- The adapter's own README.md (kept in its folder) lists the training settings.\n"
    )


def push_adapter(folder: Path, repo_id: str, token: str | None, private: bool = True) -> str:
    """Upload the adapter folder to a Hub model repo (created if needed); returns its URL."""
    token = token or os.environ.get("HF_TOKEN") or None
    if not token:
        raise AdapterError(
            "Pushing to the Hugging Face Hub needs a write token. Fix: give --token or set "
            "HF_TOKEN (create one at https://huggingface.co/settings/tokens)."
        )
    if not _REPO_ID.match(repo_id):
        raise AdapterError(f"'{repo_id}' is not a Hub repo id. Fix: use ORG/NAME (or USER/NAME).")
    info = read_adapter(folder)

    if hub_offline_forced():
        raise _unreachable(info, "HF_HUB_OFFLINE is set")
    return _upload(info, repo_id, token, private)


def _upload(info: AdapterInfo, repo_id: str, token: str, private: bool) -> str:
    # lazy: huggingface_hub is slow to import; most paths never touch the hub
    from huggingface_hub import HfApi

    # lazy: huggingface_hub is slow to import; most paths never touch the hub
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    api = HfApi(token=token)
    try:
        url = api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id,
            folder_path=info.path,
            repo_type="model",
            commit_message=f"Upload adapter {info.name} from Instruct Studio",
            ignore_patterns=[".*", "**/.*"],  # temp files of an atomic write, if any
        )
    except OfflineModeIsEnabled:
        raise _unreachable(info, "offline mode is enabled") from None
    except HfHubHTTPError as exc:
        # The server's message (auth, permissions, name taken), never the request headers.
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else "HTTP error"
        raise AdapterError(
            f"The Hub refused the upload to {repo_id}: {first}. Fix: check that the token can "
            "write to that namespace and that the repo id is right."
        ) from None
    except OSError as exc:  # DNS failure, refused connection, requests' ConnectionError
        raise _unreachable(info, type(exc).__name__) from None
    except Exception as exc:
        if _is_network_error(exc):
            raise _unreachable(info, type(exc).__name__) from None
        raise
    return str(url)


def _is_network_error(exc: BaseException) -> bool:
    # httpx (huggingface_hub >= 1.0) raises its own TransportError family, not OSError.
    try:
        import httpx  # lazy: httpx is needed only when talking to the Hub
    except ImportError:
        return False
    return isinstance(exc, httpx.TransportError)


def _unreachable(info: AdapterInfo, why: str) -> AdapterError:
    return AdapterError(
        f"The Hugging Face Hub cannot be reached ({why}), so nothing was uploaded. Fix: go online "
        f"and retry, or copy the adapter folder {info.path} by hand (it is self-contained)."
    )
