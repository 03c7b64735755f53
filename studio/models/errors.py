"""Errors raised while finding or loading a model; each message names the problem and the fix."""


class ModelError(Exception):
    """Base class for model problems a user can act on."""


class ModelNotFoundError(ModelError):
    """The spec does not name a bundled model, a local folder, a GGUF file or a reachable hub id."""


class ModelLoadError(ModelError):
    """The model was found but transformers cannot load it as asked."""


class QuantizationError(ModelError):
    """The requested quantization cannot be used here (e.g. bitsandbytes missing)."""
