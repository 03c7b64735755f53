"""Where a model comes from (registry), how it is converted and loaded (loading), and the cache."""

from studio.models.errors import ModelError, ModelLoadError, ModelNotFoundError, QuantizationError
from studio.models.registry import BUNDLED_MODELS, ModelSource, resolve_spec

__all__ = [
    "BUNDLED_MODELS",
    "ModelError",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelSource",
    "QuantizationError",
    "resolve_spec",
]
