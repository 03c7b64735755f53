"""The adapter folder, read side: its safe location, its metadata (studio.json) and listing.

A tuning run writes `<adapters_dir>/<name>/` holding the PEFT files (adapter_config.json and
adapter_model.safetensors), the tokenizer, and what the studio knows about the run: studio.json
(an AdapterCard), training_config.yaml, prompt_template.yaml and a README.md model card. Only the
PEFT files are needed to load it, so adapters trained elsewhere ("foreign" ones) list too.
The model layer reads folders; studio.tuning.card writes them.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from studio import __version__

ADAPTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")  # an adapter folder's name

STUDIO_JSON = "studio.json"
PEFT_CONFIG = "adapter_config.json"
WEIGHT_FILES = ("adapter_model.safetensors", "adapter_model.bin")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


class AdapterError(ValueError):
    """An adapter name, folder or operation is unusable; the message names the fix."""


def adapter_path(adapters_dir: Path, name: str) -> Path:
    """`adapters_dir/name`, refusing names that are not plain folder names or escape the folder."""
    if not isinstance(name, str) or not ADAPTER_NAME.match(name):
        raise AdapterError(
            f"{name!r} is not a valid adapter name: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit (no paths)."
        )
    root = Path(adapters_dir).expanduser().resolve()
    # The name has no '/', so only a symlink can lead elsewhere; resolve() follows it.
    target = (root / name).resolve()
    if target.parent != root:
        raise AdapterError(
            f"Adapter '{name}' points outside {root} (a symlink?). Fix: keep adapter folders "
            "inside the adapters folder, or pass the folder path itself."
        )
    return Path(adapters_dir) / name


@dataclass(frozen=True)
class AdapterCard:
    """What the studio knows about an adapter it trained; stored as studio.json."""

    name: str
    base_model: str  # the studio spec, e.g. "smollm2-135m-instruct"
    base_location: str  # the resolved folder or hub id the weights came from
    quantization: str
    config: dict[str, Any]  # TuneConfig.to_dict()
    template_name: str | None
    template_hash: str | None
    template_yaml: str | None
    dataset_name: str
    dataset_path: str | None
    dataset_hash: str
    n_train: int
    n_eval: int
    metrics: dict[str, float | int | None] = field(default_factory=dict)
    run_id: int | None = None
    created_at: str = field(default_factory=lambda: utc_now())
    studio_version: str = __version__

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdapterCard:
        # Unknown keys (written by a newer studio) are ignored rather than fatal.
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(frozen=True)
class AdapterInfo:
    """An adapter folder as found on disk. `card` is None for a foreign PEFT adapter."""

    name: str
    path: Path
    base_model: str
    card: AdapterCard | None
    peft_config: dict[str, Any]
    size_bytes: int
    created_at: str

    @property
    def eval_loss(self) -> float | None:
        value = self.card.metrics.get("eval_loss") if self.card else None
        return float(value) if isinstance(value, (int, float)) else None


def is_adapter_folder(path: Path) -> bool:
    return (Path(path) / PEFT_CONFIG).is_file()


def read_adapter(folder: Path) -> AdapterInfo:
    """What is in an adapter folder; AdapterError when the PEFT config or weights are missing."""
    folder = Path(folder)
    peft_config = _read_json(folder / PEFT_CONFIG, "its PEFT config")
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise AdapterError(
            f"Adapter folder {folder} has no weights ({' or '.join(WEIGHT_FILES)}). "
            "Fix: the run probably did not finish; train it again or copy the weights in."
        )
    card = _read_card(folder)
    base = card.base_model if card else str(peft_config.get("base_model_name_or_path") or "")
    if not base:
        raise AdapterError(
            f"Adapter {folder} does not say which base model it belongs to. Fix: set "
            f"base_model_name_or_path in {PEFT_CONFIG} to the base model's id or folder."
        )
    return AdapterInfo(
        name=folder.name,
        path=folder,
        base_model=base,
        card=card,
        peft_config=peft_config,
        size_bytes=sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()),
        created_at=card.created_at if card else _mtime_iso(folder / PEFT_CONFIG),
    )


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise AdapterError(
            f"{path.parent} is not a LoRA adapter: {path.name} is missing. "
            "Fix: point at a folder written by PEFT's save_pretrained (or a studio tuning run)."
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise AdapterError(
            f"Cannot read {what} ({path}): {exc}. Fix: repair or remove it."
        ) from None
    if not isinstance(data, dict):
        raise AdapterError(f"{path} is not a JSON object. Fix: repair or remove it.")
    return data


def _read_card(folder: Path) -> AdapterCard | None:
    if not (folder / STUDIO_JSON).is_file():
        return None
    data = _read_json(folder / STUDIO_JSON, "the studio metadata")
    try:
        return AdapterCard.from_dict(data)
    except TypeError as exc:
        raise AdapterError(
            f"{folder / STUDIO_JSON} is incomplete ({exc}). Fix: delete it to use the adapter "
            "as a plain PEFT adapter."
        ) from None


def _mtime_iso(path: Path) -> str:
    stamp = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
    return stamp.isoformat(timespec="seconds")


def list_adapters(adapters_dir: Path) -> list[AdapterInfo]:
    """Readable adapters in adapters_dir, newest first; broken, temp ('.') or escaping ones skip."""
    root = Path(adapters_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.name.startswith(".") or not child.is_dir() or not is_adapter_folder(child):
            continue
        try:
            found.append(read_adapter(adapter_path(root, child.name)))
        except AdapterError:
            continue  # a half-written or foreign folder we cannot use; `adapters show` explains
    return sorted(found, key=lambda info: _sort_key(info.created_at), reverse=True)


def _sort_key(created_at: str) -> float:
    try:
        stamp = datetime.fromisoformat(created_at)
    except ValueError:
        return 0.0
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()
