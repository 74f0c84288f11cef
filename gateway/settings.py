"""Frozen settings of one gateway process, from flags, ``PML_*`` environment variables and defaults; with
`gateway.config`, the only place (with `cli`) that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import platformdirs

from gateway.errors import ConfigError

DEFAULT_CALL_TIMEOUT_S = 30.0
DEFAULT_RATE_LIMIT = 3600
"""Requests per API key per window over HTTP, unless --rate-limit / PML_RATE_LIMIT says otherwise."""
DEFAULT_RATE_WINDOW_S = 3600.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Everything the composition root needs; built once by `cli` from flags, environment, defaults."""

    config_path: Path | None = None
    database_url: str | None = None
    data_dir: Path = field(default_factory=lambda: default_data_dir())
    model_dir: Path | None = None
    embed_threads: int | None = None
    """onnxruntime threads per embedding call (None: `gateway.embed.onnx.default_threads`, two or fewer cores)."""
    log_level: str = "INFO"
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    http_bind: tuple[str, int] | None = None
    """``serve --http HOST:PORT``: serve MCP over streamable HTTP there instead of stdio."""
    rate_limit: int = DEFAULT_RATE_LIMIT
    """Requests per API key per rate-limit window over HTTP (0: unlimited)."""
    rate_window_s: float = DEFAULT_RATE_WINDOW_S
    """The rate-limit window (the seed's API-key windows last an hour)."""
    master_key: str | None = field(default=None, repr=False)
    """The master keyring itself (``PML_MASTER_KEY``: ``id:base64key`` entries, comma-separated, the last current)."""
    master_key_file: Path | None = None
    """Where the master keyring lives when ``PML_MASTER_KEY`` is not set (default: ``<data dir>/master.key``)."""
    public_url: str | None = None
    """The gateway's own external URL (``--public-url``), its OAuth issuer; default ``http://HOST:PORT``."""
    oauth: OAuthSignIn | None = None
    """OAuth sign-in over HTTP, when ``--oauth-client-id`` is given."""

    @property
    def keyring_path(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def pgdata(self) -> Path:
        return self.data_dir / "pgdata"


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthSignIn:
    """Sign-in delegated to an upstream identity provider: ``github`` or an OpenID Connect issuer URL, the
    gateway's client there, and whether a first sign-in makes a user (else an admin links identities first)."""

    issuer: str = "github"
    client_id: str
    client_secret: str = field(repr=False)
    open_signup: bool = False


def default_data_dir() -> Path:
    """The per-user data directory (``~/.local/share/pml-gateway`` on Linux)."""
    return Path(platformdirs.user_data_dir("pml-gateway", appauthor=False))


def default_config_path() -> Path:
    """Where `init` writes the servers file unless told otherwise (``~/.config/pml-gateway/servers.json`` on
    Linux, honouring ``XDG_CONFIG_HOME``)."""
    return Path(platformdirs.user_config_dir("pml-gateway", appauthor=False)) / "servers.json"


def settings_from(flags: Mapping[str, Any], environ: Mapping[str, str]) -> Settings:
    """Flags first, then ``PML_*`` environment variables, then defaults."""

    def pick(flag: str, env: str) -> Any:
        value = flags.get(flag)
        return value if value not in (None, "") else environ.get(env) or None

    config = pick("config", "PML_CONFIG")
    data_dir = pick("data_dir", "PML_DATA_DIR")
    model_dir = pick("model_dir", "PML_MODEL_DIR")
    threads = pick("embed_threads", "PML_EMBED_THREADS")
    timeout = pick("call_timeout", "PML_CALL_TIMEOUT")
    http = pick("http", "PML_HTTP")
    rate = pick("rate_limit", "PML_RATE_LIMIT")
    window = pick("rate_window", "PML_RATE_WINDOW")
    key_file = pick("master_key_file", "PML_MASTER_KEY_FILE")
    return Settings(
        config_path=Path(config).expanduser() if config else None,
        database_url=pick("database_url", "PML_DATABASE_URL"),
        data_dir=Path(data_dir).expanduser() if data_dir else default_data_dir(),
        model_dir=Path(model_dir).expanduser() if model_dir else None,
        embed_threads=None if threads is None else _whole(threads, "PML_EMBED_THREADS / --embed-threads", least=1,
                                                          of="threads, at least 1"),
        log_level=str(pick("log_level", "PML_LOG_LEVEL") or "INFO").upper(),
        call_timeout_s=_positive_float(timeout, "PML_CALL_TIMEOUT / --call-timeout") or DEFAULT_CALL_TIMEOUT_S,
        http_bind=parse_bind(str(http)) if http else None,
        rate_limit=DEFAULT_RATE_LIMIT if rate is None else _whole(rate, "PML_RATE_LIMIT / --rate-limit", least=0,
                                                                  of="requests per window (0: unlimited)"),
        rate_window_s=_positive_float(window, "PML_RATE_WINDOW / --rate-window") or DEFAULT_RATE_WINDOW_S,
        master_key=environ.get("PML_MASTER_KEY") or None,
        master_key_file=Path(key_file).expanduser() if key_file else None,
        public_url=_public_url(pick("public_url", "PML_PUBLIC_URL")),
        oauth=_oauth(pick, environ),
    )


def _public_url(raw: Any) -> str | None:
    if raw is None:
        return None
    url = str(raw).rstrip("/")
    if not url.startswith(("https://", "http://")) or "?" in url or "#" in url:
        raise ConfigError(f"--public-url / PML_PUBLIC_URL: expected an http(s) URL without query, got {raw!r}")
    return url


def _oauth(pick: Any, environ: Mapping[str, str]) -> OAuthSignIn | None:
    """OAuth sign-in when a client id is given; its secret comes from ``PML_OAUTH_CLIENT_SECRET`` only."""
    client_id = pick("oauth_client_id", "PML_OAUTH_CLIENT_ID")
    if client_id is None:
        return None
    secret = environ.get("PML_OAUTH_CLIENT_SECRET")
    if not secret:
        raise ConfigError("--oauth-client-id needs the client's secret in PML_OAUTH_CLIENT_SECRET")
    issuer = str(pick("oauth_issuer", "PML_OAUTH_ISSUER") or "github")
    if issuer != "github" and not issuer.startswith(("https://", "http://")):
        raise ConfigError(f"--oauth-issuer / PML_OAUTH_ISSUER: 'github' or an OpenID Connect issuer URL, "
                          f"got {issuer!r}")
    signup = pick("oauth_open_signup", "PML_OAUTH_OPEN_SIGNUP")
    return OAuthSignIn(issuer=issuer, client_id=str(client_id), client_secret=secret,
                       open_signup=str(signup).lower() in ("1", "true", "yes", "on"))


def parse_bind(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6; a bare ``PORT`` binds 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    if not port.isdigit() or not 0 <= int(port) <= 65535 or not host:
        raise ConfigError(f"--http / PML_HTTP: expected HOST:PORT such as 127.0.0.1:8765, got {text!r}")
    return host.strip("[]") if host.startswith("[") else host, int(port)


def _whole(value: Any, name: str, *, least: int, of: str) -> int:
    """`value` as a whole number of at least `least`; else a `ConfigError` naming `name` and what it counts."""
    try:
        number = int(value)
    except (TypeError, ValueError):
        number = least - 1
    if number < least:
        raise ConfigError(f"{name}: expected a whole number of {of}, got {value!r}")
    return number


def _positive_float(raw: Any, what: str) -> float | None:
    if raw is None:
        return None
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number of seconds, got {raw!r}") from None
    if value <= 0:
        raise ConfigError(f"{what} must be positive, got {raw!r}")
    return value


def current_environ() -> Mapping[str, str]:
    """The process environment; only `cli` calls this."""
    return os.environ
