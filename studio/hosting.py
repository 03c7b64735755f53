"""Who may do what on this deployment: the hosting policy, built once from the operator's
settings and handed to every engine entry point (see SECURITY.md).

Two kinds of people use a studio. The operator sets its environment, runs its command line and
owns its disk; a visitor has only the browser and the HTTP API. On a desktop the visitor *is*
the operator, so nothing is refused. A shared studio (STUDIO_AUTH, a Space, STUDIO_SHARED=1 or
a non-loopback address) serves visitors who are trusted with the studio's work but not with the
host: its secrets, its files, its other servers. A public demo (STUDIO_DEMO=1) serves strangers:
they may measure, not change what everyone shares.

Every refusal is a `PolicyRefusal` raised here, naming the rule and the setting that changes it,
so the UI, the HTTP API (by endpoint name or by fn_index) and the CLI refuse alike.
"""

from __future__ import annotations

import enum
import ipaddress
import os
import re
import socket
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from studio.settings import PROMPTS_DIR, SAMPLES_DIR, Settings

# Never a credential, whatever an allow-list says: the studio's own settings (STUDIO_AUTH holds
# every password, STUDIO_DB_URL the database's) stay on the host.
_NEVER_KEYS = re.compile(r"STUDIO_.*")
_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


class Mode(enum.Enum):
    DESKTOP = "desktop"  # the visitor is the operator
    SHARED = "shared"  # logged-in or otherwise trusted visitors, untrusted with the host
    DEMO = "demo"  # anyone: measure only


class PolicyRefusal(ValueError):
    """An action this deployment's hosting policy refuses. The message names the rule and the
    setting that changes it; `rule` is a stable identifier for tests and logs."""

    def __init__(self, rule: str, message: str, setting: str | None = None) -> None:
        self.rule = rule
        self.setting = setting
        tail = f" (hosting rule '{rule}'"
        tail += f"; the operator's setting {setting} changes this)" if setting else ")"
        super().__init__(message.rstrip(".") + "." + tail)


@dataclass(frozen=True)
class Limits:
    """Work and size bounds that hold in every mode: a template's rendering, a data file's
    decoded size, a bundle's uncompressed contents."""

    upload_mb: int = 512
    render_chars: int = 1_000_000
    render_steps: int = 200_000
    render_seconds: float = 2.0
    data_cells: int = 5_000_000
    data_mb: int = 1024
    bundle_mb: int = 256
    bundle_members: int = 64
    bundle_ratio: int = 200


@dataclass(frozen=True)
class HostingPolicy:
    """The operator's decisions, in one immutable object. Build it with `from_settings`."""

    mode: Mode
    demo_max_examples: int = 200
    served_keys: frozenset[str] = frozenset()
    served_hosts: frozenset[str] = frozenset()
    data_dirs: tuple[Path, ...] = ()
    uploads_dir: Path = field(default_factory=lambda: _uploads_dir())
    library: Path = PROMPTS_DIR
    adapters_dir: Path | None = None
    models_dir: Path | None = None
    written_dir: Path | None = None  # datasets the studio wrote (pairs, synthetic data)
    limits: Limits = Limits()

    @classmethod
    def from_settings(cls, settings: Settings, host: str | None = None) -> HostingPolicy:
        """The policy of a studio run with these settings, served on `host` if it serves."""
        return cls(
            mode=deployment_mode(settings, host),
            demo_max_examples=settings.demo_max_examples,
            served_keys=frozenset(_names(settings.served_keys)),
            served_hosts=frozenset(h.lower() for h in _names(settings.served_hosts)),
            data_dirs=tuple(Path(p).expanduser().resolve() for p in _paths(settings.data_dirs)),
            library=settings.prompts_dir,
            adapters_dir=settings.adapters_dir,
            models_dir=settings.models_dir,
            written_dir=settings.home / "datasets",
            limits=Limits(
                upload_mb=settings.max_upload_mb,
                render_chars=settings.max_render_chars,
                render_steps=settings.max_render_steps,
                render_seconds=settings.max_render_seconds,
                data_cells=settings.max_data_cells,
                data_mb=settings.max_data_mb,
                bundle_mb=settings.max_bundle_mb,
            ),
        )

    @classmethod
    def desktop(cls, **values: object) -> HostingPolicy:
        """The single-user policy (the operator at their own machine)."""
        return cls(mode=Mode.DESKTOP, **values)  # type: ignore[arg-type]

    @property
    def visitors_are_operators(self) -> bool:
        return self.mode is Mode.DESKTOP

    @property
    def is_demo(self) -> bool:
        return self.mode is Mode.DEMO

    def describe(self) -> str:
        """One line for the UI header and the server log."""
        if self.mode is Mode.DEMO:
            return (
                f"Public demo: measure only; training, imports and library edits are off; a "
                f"comparison scores at most {self.demo_max_examples} rows."
            )
        if self.mode is Mode.SHARED:
            return "Shared studio: server files, secrets and hosts stay with the operator."
        return ""

    # -- what a visitor may change ---------------------------------------------------------

    def check_training(self) -> None:
        if self.is_demo:
            raise PolicyRefusal(
                "demo-no-training",
                "training is switched off: this studio is a public demo, for measuring only. "
                "Fix: run the studio yourself (make run) to tune adapters",
                "STUDIO_DEMO",
            )

    def check_remote_code(self, enabled: bool) -> None:
        """Running code shipped with a model is the operator's call alone."""
        if enabled and not self.visitors_are_operators:
            raise PolicyRefusal(
                "operator-only",
                "trust_remote_code runs code shipped with a model on this server, which only its "
                f"operator may allow; this {self.mode.value} studio refuses it for visitors. Fix: "
                "use a model that needs no remote code, or run the studio yourself",
                "STUDIO_SHARED",
            )

    def check_comparison_rows(self, n_examples: int, n_configs: int) -> None:
        """A public demo scores at most demo_max_examples rows per comparison (resumes too)."""
        rows = n_examples * n_configs
        cap = self.demo_max_examples
        if not self.is_demo or rows <= cap:
            return
        fix = (
            f"compare at most {cap} configurations"
            if n_configs > cap
            else f"set a limit of at most {max(1, cap // max(1, n_configs))} examples, or "
            "compare fewer configurations"
        )
        raise PolicyRefusal(
            "demo-row-cap",
            f"this comparison would score {n_examples} examples × {n_configs} configurations = "
            f"{rows} rows; a public demo scores at most {cap}. Fix: {fix}",
            "STUDIO_DEMO_MAX_EXAMPLES",
        )

    def check_shared_write(self, what: str) -> None:
        """Changes to what every visitor shares (the template library, other people's runs,
        imported bundles) are refused on a public demo."""
        if self.is_demo:
            raise PolicyRefusal(
                "demo-read-only",
                f"{what} is switched off: this studio is a public demo, and what it stores is "
                "shared by every visitor. Fix: run the studio yourself (make run) to do this",
                "STUDIO_DEMO",
            )

    # -- what a visitor may read -----------------------------------------------------------

    def data_roots(self) -> list[Path] | None:
        """Folders data files may be read from; None when any path is allowed (desktop)."""
        if self.visitors_are_operators:
            return None
        written = [self.written_dir.resolve()] if self.written_dir is not None else []
        return [SAMPLES_DIR.resolve(), self.uploads_dir.resolve(), *self.data_dirs, *written]

    def check_data_path(self, path: str | Path) -> Path:
        """The data file's resolved path, if a visitor may read it. The check comes before any
        look at the file, so a refusal says nothing about whether the path exists."""
        resolved = Path(path).expanduser().resolve()
        roots = self.data_roots()
        if roots is None or any(resolved.is_relative_to(root) for root in roots):
            return resolved
        raise PolicyRefusal(
            "server-files",
            f"'{Path(path).name}' is not an upload or a sample: this {self.mode.value} studio "
            "reads data only from uploads, studio/samples/ and the folders its operator lists. "
            "Fix: upload the file instead, or use a sample from studio/samples",
            "STUDIO_DATA_DIRS",
        )

    def check_template_path(self, text: str) -> None:
        """Templates are named from the library; a file path is the operator's alone."""
        if self.visitors_are_operators:
            return
        resolved = Path(text).expanduser().resolve()
        if resolved.is_relative_to(self.library.resolve()):
            return
        raise PolicyRefusal(
            "server-files",
            "templates are chosen by name from the library here, not by file path: this "
            f"{self.mode.value} studio does not read template files from the server. Fix: give "
            "a template name (see the Prompts tab)",
        )

    def check_model_spec(self, spec: str) -> None:
        """Local model paths are the operator's: a visitor names bundled models, hub ids,
        adapters (adapter:NAME, adapters/NAME) and served models the policy allows."""
        if self.visitors_are_operators:
            return
        text = spec.strip()
        if text.startswith("openai:"):
            return  # checked where it is opened (check_served_url, served_key)
        if not _names_a_path(text):
            return  # a bundled alias, a hub id or adapter:NAME
        resolved = Path(text).expanduser().resolve()
        allowed = [p.resolve() for p in (self.adapters_dir, self.models_dir) if p is not None]
        if any(resolved.is_relative_to(root) for root in allowed):
            return
        raise PolicyRefusal(
            "server-files",
            "models are chosen by name here (a bundled model, a Hugging Face id, an adapter "
            f"as adapter:NAME), not by server path: this {self.mode.value} studio does not load "
            "files from the server. Fix: pick a model from the list",
        )

    # -- served models ---------------------------------------------------------------------

    def served_key(self, name: str) -> str | None:
        """The API key a served-model spec names with key_env=NAME, if the policy lets it
        leave the machine; None when the variable is unset."""
        if _NEVER_KEYS.fullmatch(name):
            raise PolicyRefusal(
                "served-keys",
                f"key_env={name} names one of the studio's own settings, which never leave the "
                "machine. Fix: put the server's API key in a variable of its own, e.g. "
                "OPENAI_API_KEY",
            )
        if not self.visitors_are_operators and name not in self.served_keys:
            listed = ", ".join(sorted(self.served_keys)) or "none"
            raise PolicyRefusal(
                "served-keys",
                f"key_env={name} is not a variable this studio's operator lets a model spec "
                f"send to a server (allowed: {listed}). Fix: use an allowed key_env, or ask the "
                "operator to add it",
                "STUDIO_SERVED_KEYS",
            )
        return os.environ.get(name)

    def check_served_url(self, base_url: str) -> None:
        """A served model's server, if visitors may make this studio contact it. On a desktop
        any; elsewhere only hosts the operator lists, and never a loopback, private or
        link-local address unless listed by name or address."""
        if self.visitors_are_operators:
            return
        parts = urlsplit(base_url)
        host = (parts.hostname or "").lower()
        port = parts.port or (443 if parts.scheme == "https" else 80)
        # An IPv6 entry may be written bracketed, as in a URL: [::1] or [::1]:8000.
        forms = {host, f"{host}:{port}", f"[{host}]", f"[{host}]:{port}"}
        listed = forms & self.served_hosts
        if listed:
            return
        if "*" not in self.served_hosts:
            allowed = ", ".join(sorted(self.served_hosts)) or "none"
            raise PolicyRefusal(
                "served-hosts",
                f"the server {host}:{port} is not one this studio's operator lets visitors "
                f"reach (allowed: {allowed}). Fix: use an allowed server, or ask the operator "
                "to add it",
                "STUDIO_SERVED_HOSTS",
            )
        if _is_internal(host):
            raise PolicyRefusal(
                "served-hosts",
                f"the server {host}:{port} is a loopback, private or link-local address, which "
                "'*' in the allow-list does not cover. Fix: use a public server, or ask the "
                "operator to list this host by name",
                "STUDIO_SERVED_HOSTS",
            )

    # -- errors ----------------------------------------------------------------------------

    def shown_path(self, path: str | Path) -> str:
        """How a server path appears in a message to a visitor: whole on a desktop, its last
        part elsewhere (the host's folder layout is not the visitor's business)."""
        return str(path) if self.visitors_are_operators else Path(path).name


def deployment_mode(settings: Settings, host: str | None = None) -> Mode:
    """Demo if STUDIO_DEMO; shared if STUDIO_SHARED, STUDIO_AUTH, a Hugging Face Space or a
    non-loopback listening address (unless STUDIO_SHARED=0); desktop otherwise."""
    if settings.demo:
        return Mode.DEMO
    if settings.shared is not None:
        return Mode.SHARED if settings.shared else Mode.DESKTOP
    on_space = bool(os.environ.get("SPACE_ID", "").strip())
    exposed = host is not None and not _is_loopback_name(host)
    if settings.auth is not None or on_space or exposed:
        return Mode.SHARED
    return Mode.DESKTOP


def _names_a_path(spec: str) -> bool:
    """True when the model registry would read this spec from disk: it looks like a path, or
    a folder or file of that name exists relative to the working directory."""
    looks = spec.startswith((".", "/", "~")) or spec.endswith(".gguf") or spec.count("/") > 1
    return looks or "\\" in spec or Path(spec).expanduser().exists()


def _uploads_dir() -> Path:
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio")


def _names(text: str) -> list[str]:
    return [part.strip() for part in re.split(r"[,\s]+", text or "") if part.strip()]


def _paths(text: str) -> list[str]:
    return [part.strip() for part in (text or "").split(os.pathsep) if part.strip()]


def _is_loopback_name(host: str) -> bool:
    host = host.strip().strip("[]").lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_internal(host: str) -> bool:
    """True when the host is, or resolves to, an address that is not publicly routable. An IPv4
    address carried inside IPv6 (mapped, 6to4, NAT64 64:ff9b::/96, IPv4-compatible) is judged as
    the IPv4 address it carries; `*.localhost` and a trailing dot count as loopback (RFC 6761)."""
    host = host.strip("[]").lower()
    name = host.rstrip(".")
    if name in _LOOPBACK_NAMES or name.endswith(".localhost"):
        return True
    addresses: Iterable[str]
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = {str(info[4][0]) for info in socket.getaddrinfo(host, None)}
        except OSError:
            return False  # unresolvable: the request fails on its own
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%")[0])
        judged: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
        if isinstance(ip, ipaddress.IPv6Address):
            judged += [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
            if int(ip) >> 32 in (0, 0x64FF9B << 64):  # ::a.b.c.d and 64:ff9b::a.b.c.d
                judged.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
        for one in judged:
            if not one.is_global or one.is_loopback or one.is_link_local or one.is_private:
                return True
    return False
