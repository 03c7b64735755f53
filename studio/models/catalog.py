"""The models a user can pick: bundled ones, trained LoRA adapters and the Hugging Face cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from studio.models.adapters import list_adapters
from studio.models.convert import is_converted
from studio.models.registry import BUNDLED_MODELS, adapter_spec

State = Literal["ready", "converts on first use", "not installed"]


@dataclass(frozen=True)
class CatalogEntry:
    """One row of `studio models`: a spec a user can type, where it comes from, and its state.

    size_bytes is what is on disk now: the converted folder once converted, else the shipped GGUF.
    """

    spec: str
    source: str
    size_bytes: int | None
    state: State
    note: str

    @property
    def usable(self) -> bool:
        return self.state != "not installed"


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_models(models_dir: Path, adapters_dir: Path | None = None) -> list[CatalogEntry]:
    """Bundled models, then the adapters in adapters_dir (newest first), then the HF cache."""
    entries = [_bundled_entry(alias, models_dir) for alias in BUNDLED_MODELS]
    if adapters_dir is not None:
        entries.extend(_adapter_entries(adapters_dir))
    entries.extend(_hub_cache_entries())
    return entries


def _adapter_entries(adapters_dir: Path) -> list[CatalogEntry]:
    entries = []
    for info in list_adapters(adapters_dir):
        note = f"LoRA on {info.base_model}"
        if info.eval_loss is not None:
            note += f" · eval loss {info.eval_loss:.3f}"
        spec = adapter_spec(info.path, adapters_dir)
        entries.append(CatalogEntry(spec, "adapter", info.size_bytes, "ready", note))
    return entries


def _bundled_entry(alias: str, models_dir: Path) -> CatalogEntry:
    bundled = BUNDLED_MODELS[alias]
    folder = models_dir / alias
    if is_converted(folder):
        return CatalogEntry(alias, "bundled", folder_size(folder), "ready", bundled.description)
    if bundled.installed():
        note = f"{bundled.description} First load converts its GGUF once (20-60 s)."
        return CatalogEntry(
            alias, "bundled", bundled.shipped_bytes(), "converts on first use", note
        )
    note = f"{bundled.install}; online, the alias loads {bundled.hub_id} instead."
    return CatalogEntry(alias, "bundled", None, "not installed", note)


def _hub_cache_entries() -> list[CatalogEntry]:
    try:
        # lazy: huggingface_hub is slow to import; most paths never touch the hub
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache folder yet, or an unreadable one: nothing cached to offer
        return []
    entries = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id):
        if repo.repo_type != "model":
            continue
        has_config = any(f.file_name == "config.json" for rev in repo.revisions for f in rev.files)
        if has_config:
            entries.append(
                CatalogEntry(
                    repo.repo_id, "hub-cache", repo.size_on_disk, "ready", "In the HF cache."
                )
            )
    return entries


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
