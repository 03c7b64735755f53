"""The one object the engines ask for models: resolves, loads and caches them."""

from __future__ import annotations

from studio.inference import compute
from studio.models.cache import LRUByteCache
from studio.models.loading import LoadedModel, LoadRequest, Progress, load_model
from studio.settings import Settings


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
            request, lambda: compute.run(load_model, request, self.settings, progress)
        )

    def is_loaded(self, request: LoadRequest) -> bool:
        return self.cache.get(request) is not None
