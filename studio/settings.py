"""Where the studio keeps its data and which defaults it runs with, read from STUDIO_* variables."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import platformdirs
import psutil
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "smollm2-135m-instruct"
# The one place the studio finds its own files, from a checkout or an installed package alike.
PACKAGE_DIR = Path(__file__).resolve().parent
# Shipped configs name their files relative to the folder holding the package (studio/samples/...).
SHIPPED_ROOT = PACKAGE_DIR.parent
PROMPTS_DIR = PACKAGE_DIR / "prompts"  # the bundled template library (package data)
SAMPLES_DIR = PACKAGE_DIR / "samples"  # the project's own sample data and configs (package data)
# Where a Hugging Face Space mounts its persistent storage (tests point it at a temp dir).
SPACES_DATA = Path("/data")
SPACES_HOME_NAME = "instruct-studio"


class SettingsError(ValueError):
    """A STUDIO_* variable holds a value the studio cannot use."""


def spaces_home() -> Path | None:
    """On a Hugging Face Space (SPACE_ID set) with persistent storage mounted (a writable
    /data), the studio's home there; None anywhere else. A Space's own disk is wiped at every
    restart, so without /data the usual default stands."""
    if not os.environ.get("SPACE_ID", "").strip():
        return None
    if SPACES_DATA.is_dir() and os.access(SPACES_DATA, os.W_OK | os.X_OK):
        return SPACES_DATA / SPACES_HOME_NAME
    return None


def _default_home() -> Path:
    return spaces_home() or Path(platformdirs.user_data_dir("instruct-studio", appauthor=False))


def _default_adapters_dir() -> Path:
    on_space = spaces_home()
    if on_space is not None:
        return on_space / "adapters"
    if (SHIPPED_ROOT / "pyproject.toml").is_file():  # a checkout: adapters/ beside the code
        return SHIPPED_ROOT / "adapters"
    return _default_home() / "adapters"  # an installed package: never inside site-packages


def parse_auth(value: str) -> list[tuple[str, str]]:
    """'user:password,user2:password2' as (user, password) pairs. Errors name the entry by
    position and user, never echoing a password."""
    pairs: list[tuple[str, str]] = []
    entries = [entry.strip() for entry in value.split(",")]
    for number, entry in enumerate(entries, start=1):
        user, sep, password = entry.partition(":")
        user = user.strip()
        if not entry:
            raise ValueError(f"entry {number} is empty (stray comma?); expected user:password")
        if not sep or not user or not password:
            who = f" (user {user!r})" if user and sep else ""
            raise ValueError(
                f"entry {number}{who} is not user:password with both parts non-empty; expected "
                "e.g. alice:secret1,bob:secret2"
            )
        if any(user == known for known, _ in pairs):
            raise ValueError(f"user {user!r} is listed twice")
        pairs.append((user, password))
    return pairs


def _default_cache_mb() -> int:
    # Half the machine's memory, capped at 16 GiB: room for two or three small models at once
    # while leaving the rest of the machine usable.

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
        default_factory=_default_adapters_dir,
        description="Where tuning runs write their adapters (one folder per adapter); on a "
        "Space with persistent storage, /data/instruct-studio/adapters.",
    )
    prompts_dir: Path = Field(
        default=PROMPTS_DIR,
        description="The template library the Prompts tab, Compare, Tune and `studio templates` "
        "read and save; default: the library shipped in the package (studio/prompts/).",
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
    demo: bool = Field(
        default=False,
        description="Public demo: training is switched off and comparisons are capped at "
        "STUDIO_DEMO_MAX_EXAMPLES scored rows.",
    )
    demo_max_examples: int = Field(
        default=200,
        ge=1,
        description="In demo mode, the most rows one comparison may score "
        "(evaluation examples × configurations).",
    )
    auth: SecretStr | None = Field(
        default=None,
        description="Require a login: comma-separated user:password pairs (Gradio auth); "
        "unset = no login.",
    )
    shared: bool | None = Field(
        default=None,
        description="Treat visitors as people other than the operator (see SECURITY.md): 1 "
        "always, 0 never; unset = when STUDIO_AUTH is set, on a Hugging Face Space, or when "
        "listening on a non-loopback address.",
    )
    served_keys: str = Field(
        default="",
        description="In a shared or demo studio, the environment variables a served-model "
        "spec may name with key_env= (comma-separated); STUDIO_* variables never.",
    )
    served_hosts: str = Field(
        default="",
        description="In a shared or demo studio, the servers visitors may use as served "
        "models: host or host:port, comma-separated; '*' = any public host (loopback, private "
        "and link-local addresses only when listed by name).",
    )
    data_dirs: str = Field(
        default="",
        description="In a shared or demo studio, server folders visitors may read data files "
        "from, besides uploads and studio/samples/ (separated by ':').",
    )
    max_render_chars: int = Field(
        default=1_000_000, ge=1_000, description="Longest text one template field renders to."
    )
    max_render_steps: int = Field(
        default=200_000,
        ge=100,
        description="Most loop iterations, calls and filter applications in one rendering.",
    )
    max_render_seconds: float = Field(
        default=2.0, gt=0, description="Longest one template rendering may take, in seconds."
    )
    max_data_cells: int = Field(
        default=5_000_000,
        ge=1,
        description="Most cells (rows × columns) a data file may decode to.",
    )
    max_data_mb: int = Field(
        default=1024,
        ge=1,
        description="Most text, in MiB, a data file may decode to (compressed formats "
        "such as Parquet can be far larger decoded than on disk).",
    )
    max_bundle_mb: int = Field(
        default=256,
        ge=1,
        description="Largest uncompressed contents of an imported experiment bundle, in MiB.",
    )
    concurrency: int = Field(
        default=1,
        ge=1,
        le=64,
        description="Requests of one kind (one button or API endpoint) served at once; the "
        "rest wait in the queue and see their place. Model work runs one request at a time "
        "on the compute thread anyway, so more only hides the wait.",
    )
    queue_size: int = Field(
        default=100,
        ge=1,
        description="Requests that may wait in the queue at once; more are refused as "
        "'queue full' rather than piling up.",
    )

    @field_validator("model_cache_mb")
    @classmethod
    def _positive_cache(cls, value: int) -> int:
        if value < 64:
            raise ValueError("must be at least 64 (megabytes)")
        return value

    @field_validator("auth")
    @classmethod
    def _auth_pairs(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse_auth(value.get_secret_value())
            return value
        return None  # blank = no login

    @field_validator("home", "adapters_dir", "prompts_dir")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @property
    def database_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{self.home / 'studio.db'}"

    @property
    def auth_pairs(self) -> list[tuple[str, str]] | None:
        """The (user, password) logins for Gradio's auth, or None when no login is required."""
        return None if self.auth is None else parse_auth(self.auth.get_secret_value())

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
