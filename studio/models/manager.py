"""The one object the engines ask for models: resolves, loads and caches them."""

from __future__ import annotations

from studio.models.cache import LRUByteCache
from studio.models.errors import ModelError
from studio.models.loading import LoadedModel, LoadRequest, Progress, load_model
from studio.models.registry import resolve_spec
from studio.runtime import compute
from studio.settings import Settings

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


class ModelManager:
    """Loads models on first use and keeps them within the memory budget (STUDIO_MODEL_CACHE_MB)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cache: LRUByteCache[LoadedModel] = LRUByteCache(
            settings.model_cache_mb * 1024 * 1024, lambda loaded: loaded.footprint_bytes
        )

    def get(self, request: LoadRequest, progress: Progress | None = None) -> LoadedModel:
        # Loaded on the compute thread, where the model will also generate (see compute.py).
        return self.cache.get_or_load(
            self._key(request), lambda: compute.run(load_model, request, self.settings, progress)
        )

    def is_loaded(self, request: LoadRequest) -> bool:
        return self.cache.get(self._key(request)) is not None

    def _key(self, request: LoadRequest) -> tuple[LoadRequest, float | None]:
        """An adapter retrained under the same name is a new model: key on its weights' mtime."""
        try:
            source = resolve_spec(request.spec, self.settings.adapters_dir)
        except ModelError:
            return request, None
        if source.kind != "adapter" or source.path is None:
            return request, None
        weights = [source.path / name for name in ADAPTER_WEIGHTS]
        stamps = [path.stat().st_mtime for path in weights if path.exists()]
        return request, max(stamps, default=None)
