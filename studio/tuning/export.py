"""Take an adapter out of the studio: merge it into a standalone model, or push it to the Hub.

Merging writes into a hidden temp folder next to the output and renames it at the end, so a
failed or interrupted merge never leaves a half-written model behind. Pushing needs a token
(argument or HF_TOKEN); the token is handed to huggingface_hub and never printed or stored.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.models.adapters import AdapterError, AdapterInfo, read_adapter
from studio.models.device import DevicePlan, plan_device
from studio.models.loading import LoadRequest, load_model
from studio.settings import hub_offline_forced
from studio.tuning.card import write_text_atomic

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
    loaded = load_model(request, settings, progress)
    if progress:
        progress(f"Merging {info.name} and saving to {out_dir}…")
    merged = loaded.model.merge_and_unload()
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
