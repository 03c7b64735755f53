"""Where the studio keeps its data and which defaults it runs with, read from STUDIO_* variables."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import platformdirs
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "smollm2-135m-instruct"


class SettingsError(ValueError):
    """A STUDIO_* variable holds a value the studio cannot use."""


def _default_home() -> Path:
    return Path(platformdirs.user_data_dir("instruct-studio", appauthor=False))


def _default_cache_mb() -> int:
    # Half the machine's memory, capped at 16 GiB: room for two or three small models at once
    # while leaving the rest of the machine usable.
    import psutil

    total_mb = psutil.virtual_memory().total // (1024 * 1024)
    return int(min(total_mb // 2, 16 * 1024))


class Settings(BaseSettings):
    """Studio configuration; every field maps to an environment variable named STUDIO_<FIELD>."""

    model_config = SettingsConfigDict(env_prefix="STUDIO_", extra="ignore", frozen=True)

    home: Path = Field(
        default_factory=_default_home,
        description="Data directory: the SQLite store, converted models, logs.",
    )
    db_url: str | None = Field(
        default=None,
        description="Any SQLAlchemy URL; defaults to SQLite at $STUDIO_HOME/studio.db.",
    )
    default_model: str = Field(
        default=DEFAULT_MODEL, description="Model spec selected when the UI opens."
    )
    model_cache_mb: int = Field(
        default_factory=_default_cache_mb,
        description="Memory budget for loaded models; least recently used ones are evicted.",
    )
    adapters_dir: Path = Field(
        default_factory=lambda: Path(__file__).resolve().parents[1] / "adapters",
        description="Where tuning runs write their adapters (one folder per adapter).",
    )
    offline: bool | None = Field(
        default=None,
        description="Force offline (true) or online (false) mode; unset = detect on first need.",
    )
    max_upload_mb: int = Field(
        default=512,
        ge=1,
        description="Largest data file read or uploaded, in MiB (bigger ones are refused).",
    )

    @field_validator("model_cache_mb")
    @classmethod
    def _positive_cache(cls, value: int) -> int:
        if value < 64:
            raise ValueError("must be at least 64 (megabytes)")
        return value

    @field_validator("home", "adapters_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.home / 'studio.db'}"

    @property
    def tuning_dir(self) -> Path:
        """Per-run working folders of training jobs: logs, checkpoints, the launched config."""
        return self.home / "tuning"

    @property
    def models_dir(self) -> Path:
        """Converted (GGUF → safetensors) model directories live here."""
        return self.home / "models"


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment, turning validation errors into one clear message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(part) for part in err["loc"])
            problems.append(f"STUDIO_{field.upper()}: {err['msg']}")
        raise SettingsError(
            "Invalid studio settings — " + "; ".join(problems) + ". Fix or unset these variables."
        ) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once)."""
    return load_settings()


def hub_offline_forced() -> bool:
    """True when the user told Hugging Face libraries to stay offline."""
    return any(
        os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )
