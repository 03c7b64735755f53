"""The models a user can pick: bundled ones and models in the Hugging Face cache."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.models.convert import is_converted
from studio.models.registry import BUNDLED_MODELS


@dataclass(frozen=True)
class CatalogEntry:
    """One row of `studio models`: a spec a user can type, where it comes from, and its state."""

    spec: str
    source: str
    size_bytes: int | None
    ready: bool
    note: str


def folder_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def list_models(models_dir: Path) -> list[CatalogEntry]:
    entries = [_bundled_entry(alias, models_dir) for alias in BUNDLED_MODELS]
    entries.extend(_hub_cache_entries())
    return entries


def _bundled_entry(alias: str, models_dir: Path) -> CatalogEntry:
    bundled = BUNDLED_MODELS[alias]
    folder = models_dir / alias
    if is_converted(folder):
        return CatalogEntry(alias, "bundled", folder_size(folder), True, bundled.description)
    if bundled.installed():
        note = f"{bundled.description} Converted from GGUF on first use (one time, ~20-60 s)."
        return CatalogEntry(alias, "bundled", None, True, note)
    note = f"Not installed ({bundled.install}); online, it loads {bundled.hub_id} instead."
    return CatalogEntry(alias, "bundled", None, False, note)


def _hub_cache_entries() -> list[CatalogEntry]:
    try:
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
                CatalogEntry(repo.repo_id, "hub-cache", repo.size_on_disk, True, "In the HF cache.")
            )
    return entries


def human_size(size: int | None) -> str:
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit in ("B", "KB") else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
