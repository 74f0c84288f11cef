"""The `mcpServers` servers file: which servers to run and how, and the gateway's own options beside them.

A servers file is the Claude-style ``{"mcpServers": {name: {command, args, env, cwd?, disabled?}}}`` (or, for a
server reached over streamable HTTP, ``{type: "http", url, headers?}``); the gateway's own options sit beside it
(``expose``, ``approval``, ``callTimeoutMs``, ``maxResultBytes``). Claude Desktop's own config file is read as
is: its other top-level keys are ignored, and an entry that runs this gateway is skipped.

A servers file means the same whatever directory the gateway starts in (Claude Desktop starts it anywhere,
often ``/``), because paths in it are relative to the file:

- a stdio server runs in the file's directory, or in its ``cwd`` (a relative ``cwd`` is relative to the file's
  directory), so relative paths in ``args`` are relative to that directory;
- a ``command`` with a path separator that is relative is relative to the file's directory;
- a bare command name (``python``, ``mcp-server-time``) is looked for first in the bin directory of the Python
  environment running the gateway (`load_config`'s ``bin_dir``: ``python`` is then the gateway's own interpreter,
  and a server installed beside the gateway is found), then on the server's ``PATH`` (its ``env``'s, else the
  gateway's); a name found in neither is left as written, for the launcher to report as not found.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import os
import re
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PureWindowsPath
from typing import Any

from gateway.errors import ConfigError
from gateway.secrets import redact, worth_hiding
from gateway.settings import DEFAULT_CALL_TIMEOUT_S

logger = logging.getLogger(__name__)

SERVER_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
SERVER_KEYS = frozenset(
    {"command", "args", "env", "cwd", "disabled", "type", "callTimeoutMs", "maxResultBytes", "url", "headers"}
)
HTTP_TYPES = ("http", "streamable-http", "streamable_http")
_GATEWAY_KEYS = frozenset({"mcpServers", "expose", "approval", "callTimeoutMs", "maxResultBytes", "code"})
_CODE_KEYS = {
    "timeoutMs": "timeout_ms", "maxMemoryBytes": "max_memory_bytes", "maxOutputBytes": "max_output_bytes",
    "maxToolCalls": "max_tool_calls", "maxRecursionDepth": "max_recursion_depth",
}
DEFAULT_MAX_RESULT_BYTES = 4 * 1024 * 1024
"""The largest message a downstream server may send (a tools/call result, mostly); larger ones are refused."""
_EXPOSE_VALUES = ("found", "search", "all")
_GATEWAY_NAMES = ("pml-gateway", "pml-gateway.exe")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerSpec:
    """How to start (stdio) or reach (`url`: streamable HTTP) one downstream server. `env` and `headers` may hold
    secrets: they are never shown, and `secrets` are redacted from whatever the gateway shows or keeps of it."""

    name: str
    command: str = ""
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)
    cwd: Path | None = None
    disabled: bool = False
    call_timeout_s: float = DEFAULT_CALL_TIMEOUT_S
    max_result_bytes: int = DEFAULT_MAX_RESULT_BYTES
    secrets: frozenset[str] = field(default=frozenset(), repr=False)
    """Values never to show (`load_config` fills it: see `_secret_values`)."""

    def redact(self, text: str) -> str:
        """`text` with this server's secrets replaced by ``***``."""
        return redact(text, self.secrets)

    def describe(self) -> str:
        """The command line with the env's keys only (or the URL and the headers' names), secrets redacted: safe
        for logs."""
        if self.url is not None:
            url = self.redact(self.url)
            return f"{url} (headers: {','.join(sorted(self.headers))})" if self.headers else url
        keys = ",".join(sorted(self.env))
        return self.redact(f"{self.command} {' '.join(self.args)}") + (f" (env: {keys})" if keys else "")


def _secret_values(*, env: Mapping[str, str], headers: Mapping[str, str], written: Iterable[str],
                   environ: Mapping[str, str]) -> frozenset[str]:
    """What a server's spec must never show: its `env` and `headers` values, and the values of the ``${VAR}``
    references in `written` (its args, url, headers and env as the file writes them)."""
    expanded = {environ[m.group(1)] for text in written for m in _VAR_RE.finditer(text) if m.group(1) in environ}
    return worth_hiding({*env.values(), *headers.values(), *expanded})


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeLimits:
    """What one `execute_code` run may use (the servers file's ``code`` object; a call's ``timeout_ms`` may lower
    the time, never raise it)."""

    timeout_ms: int = 30_000
    max_memory_bytes: int = 64 * 1024 * 1024
    max_output_bytes: int = 1024 * 1024
    """What the code prints plus what it returns, each."""
    max_tool_calls: int = 200
    max_recursion_depth: int = 200


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """The servers file, validated."""

    servers: tuple[ServerSpec, ...] = ()
    expose: str = "found"
    """Which downstream tools `tools/list` shows beside the meta-tools: those a session's searches found
    (``found``), none (``search``), or every one (``all``)."""
    approval: frozenset[str] = frozenset()
    code: CodeLimits = CodeLimits()
    source: Path | None = None

    @property
    def expose_all(self) -> bool:
        return self.expose == "all"

    def server(self, name: str) -> ServerSpec | None:
        return next((s for s in self.servers if s.name == name), None)


def load_config(
    path: Path, environ: Mapping[str, str], *, default_timeout_s: float = DEFAULT_CALL_TIMEOUT_S,
    bin_dir: Path | None = None,
) -> GatewayConfig:
    """Read and validate a servers file; every problem is a `ConfigError` naming the file, server and key.

    Paths are resolved as the module docstring says; `bin_dir` is the bin (``Scripts``) directory of the Python
    environment running the gateway, where bare command names are looked for first (None: only on PATH).
    """
    document = _read_json(path)
    unknown = sorted(set(document) - _GATEWAY_KEYS)
    if unknown:
        logger.info("%s: ignoring top-level keys %s (not gateway settings)", path, ", ".join(unknown))
    servers_doc = document.get("mcpServers")
    if not isinstance(servers_doc, dict):
        raise ConfigError(f'{path}: "mcpServers" must be an object of servers, got {_kind(servers_doc)}')
    limits = _Limits(
        call_timeout_s=_timeout_ms(document, f"{path}", default_timeout_s),
        max_result_bytes=_max_bytes(document, f"{path}", DEFAULT_MAX_RESULT_BYTES),
    )
    servers = _parse_servers(path, servers_doc, environ, limits, _Places(path.absolute().parent, bin_dir))
    return GatewayConfig(
        servers=servers,
        expose=_expose(path, document.get("expose", "found")),
        approval=_approval(path, document.get("approval", [])),
        code=_code_limits(path, document.get("code", {})),
        source=path,
    )


def _code_limits(path: Path, doc: Any) -> CodeLimits:
    """The ``code`` object: each key a positive integer (milliseconds, bytes or a count)."""
    if not isinstance(doc, dict):
        raise ConfigError(f'{path}: "code" must be an object of limits, got {_kind(doc)}')
    unknown = sorted(set(doc) - set(_CODE_KEYS))
    if unknown:
        raise ConfigError(f'{path}: "code" has unknown keys {", ".join(unknown)}; expected some of '
                          f'{", ".join(_CODE_KEYS)}')
    values: dict[str, int] = {}
    for key, value in doc.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f'{path}: "code.{key}" must be a positive integer, got {json.dumps(value)}')
        values[_CODE_KEYS[key]] = value
    return CodeLimits(**values)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a JSON object with \"mcpServers\", got {_kind(document)}")
    return document


@dataclass(frozen=True, slots=True, kw_only=True)
class _Limits:
    """The file-wide defaults a server entry may override."""

    call_timeout_s: float
    max_result_bytes: int

    def of(self, entry: dict[str, Any], where: str) -> dict[str, Any]:
        """The entry's own limits, as `ServerSpec` keywords."""
        return {
            "call_timeout_s": _timeout_ms(entry, where, self.call_timeout_s),
            "max_result_bytes": _max_bytes(entry, where, self.max_result_bytes),
        }


@dataclass(frozen=True, slots=True)
class _Places:
    """Where a servers file's paths and bare command names are resolved: its directory, the gateway's bin dir."""

    base: Path
    bin_dir: Path | None


def _parse_servers(
    path: Path, doc: dict[str, Any], environ: Mapping[str, str], limits: _Limits, places: _Places
) -> tuple[ServerSpec, ...]:
    specs: list[ServerSpec] = []
    for raw_name, entry in doc.items():
        where = f'{path}: server "{raw_name}"'
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} must be an object with a \"command\", got {_kind(entry)}")
        if runs_this_gateway(entry, path):
            logger.info("%s runs pml-gateway itself over this file; skipped", where)
            continue
        spec = _parse_server(where, normalise_server_name(str(raw_name), where), entry, environ, limits, places)
        if any(s.name == spec.name for s in specs):
            raise ConfigError(f'{where}: its id "{spec.name}" collides with another server\'s; rename one')
        specs.append(spec)
    return tuple(specs)


def _parse_server(
    where: str, name: str, entry: dict[str, Any], environ: Mapping[str, str], limits: _Limits, places: _Places
) -> ServerSpec:
    unknown = sorted(set(entry) - SERVER_KEYS)
    if unknown:
        allowed = ", ".join(sorted(SERVER_KEYS))
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {allowed})")
    kind = entry.get("type", "http" if "url" in entry else "stdio")
    if kind in HTTP_TYPES:
        return _parse_http_server(where, name, entry, environ, limits)
    if kind != "stdio":
        raise ConfigError(f'{where}: "type" must be "stdio" or "http" (streamable HTTP), got {kind!r}')
    command = entry.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ConfigError(f'{where}: "command" must be a non-empty string, got {_kind(command)}')
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ConfigError(f'{where}: "args" must be a list of strings')
    env = entry.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, str) for v in env.values()):
        raise ConfigError(f'{where}: "env" must be an object of string values')
    cwd = entry.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ConfigError(f'{where}: "cwd" must be a string path')
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ConfigError(f'{where}: "disabled" must be true or false')
    expanded_env = {k: _expand(v, where, f"env.{k}", environ) for k, v in env.items()}
    search_path = expanded_env.get("PATH", environ.get("PATH"))
    return ServerSpec(
        name=name,
        command=_resolve_command(_expand(command, where, "command", environ), places, search_path),
        args=tuple(_expand(a, where, f"args[{i}]", environ) for i, a in enumerate(args)),
        env=expanded_env,
        cwd=places.base / Path(_expand(cwd, where, "cwd", environ)).expanduser() if cwd else places.base,
        disabled=disabled,
        secrets=_secret_values(env=expanded_env, headers={}, written=[*args, *env.values()], environ=environ),
        **limits.of(entry, where),
    )


def _resolve_command(command: str, places: _Places, search_path: str | None) -> str:
    """A path is taken relative to the servers file (not to whatever directory the gateway started in); a bare
    name is looked up by `find_command`, and left as written if it is nowhere, so the launcher names it."""
    if "/" in command or os.sep in command:
        return str(places.base / Path(command).expanduser())
    return find_command(command, bin_dir=places.bin_dir, search_path=search_path) or command


def find_command(name: str, *, bin_dir: Path | None, search_path: str | None) -> str | None:
    """The absolute path a bare command name runs from: the gateway's own environment first (`bin_dir`, so
    ``pip install`` beside the gateway is enough, whatever PATH the client gives it), then `search_path`'s
    directories (PATH); None if neither has it."""
    for directories in (str(bin_dir) if bin_dir is not None else None, search_path):
        found = shutil.which(name, path=directories) if directories else None
        if found is not None:
            return found
    return None


def _parse_http_server(
    where: str, name: str, entry: dict[str, Any], environ: Mapping[str, str], limits: _Limits
) -> ServerSpec:
    url = entry.get("url")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f'{where}: "url" must be an http:// or https:// URL, got {_kind(url)}')
    headers = entry.get("headers", {})
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise ConfigError(f'{where}: "headers" must be an object of string values')
    disabled = entry.get("disabled", False)
    if not isinstance(disabled, bool):
        raise ConfigError(f'{where}: "disabled" must be true or false')
    expanded_headers = {k: _expand(v, where, f"headers.{k}", environ) for k, v in headers.items()}
    return ServerSpec(
        name=name, url=_expand(url, where, "url", environ), disabled=disabled, headers=expanded_headers,
        secrets=_secret_values(env={}, headers=expanded_headers, written=[url, *headers.values()], environ=environ),
        **limits.of(entry, where),
    )


SECRET_REF = re.compile(r"\$\{secret:([A-Za-z_][A-Za-z0-9_]{0,63})\}")
"""``${secret:NAME}`` in a user's server entry: that user's secret NAME."""
USER_SERVER_KEYS = SERVER_KEYS - {"cwd"}


def secret_names(entry: Any) -> list[str]:
    """The secrets an entry refers to, in order, once each."""
    found: dict[str, None] = {}
    for text in _strings(entry):
        found.update((m.group(1), None) for m in SECRET_REF.finditer(text))
    return list(found)


def user_server_spec(name: str, entry: Any, secrets: Mapping[str, str], *, allow_stdio: bool,
                     bin_dir: Path | None = None) -> ServerSpec:
    """A user's server (an ``mcpServers`` entry kept in `user_mcp_configs`) as a spec, its ``${secret:NAME}``
    filled from `secrets` (and those values redacted from whatever is shown of it). Nothing of the gateway's
    environment is expanded: ``${VAR}`` is an error. Without `allow_stdio` only a server reached over HTTP is
    accepted: a stdio entry runs a command on the gateway's host."""
    where = f'user server "{name}"'
    if not SERVER_NAME_RE.match(name):
        raise ConfigError(f"{where}: the name must be 1 to 48 letters, digits, _ or -")
    if not isinstance(entry, dict):
        raise ConfigError(f'{where} must be an object like an "mcpServers" entry, got {_kind(entry)}')
    unknown = sorted(set(entry) - USER_SERVER_KEYS)
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (allowed: {', '.join(sorted(USER_SERVER_KEYS))})")
    if not allow_stdio and entry.get("type", "http" if "url" in entry else "stdio") not in HTTP_TYPES:
        raise ConfigError(f'{where}: only a server reached over HTTP ("url") may be added by a user; a stdio '
                          "server runs a command on the gateway's host, so an admin adds it "
                          "(`pml-gateway user-servers add`)")
    gateway_vars = sorted({m.group(1) for text in _strings(entry) for m in _VAR_RE.finditer(text)})
    if gateway_vars:
        raise ConfigError(f"{where}: uses ${{{gateway_vars[0]}}}; a user's server may refer to that user's secrets "
                          "(${secret:NAME}), never to the gateway's environment")
    missing = [n for n in secret_names(entry) if n not in secrets]
    if missing:
        raise ConfigError(f"{where}: no secret {missing[0]!r} is set for this user (`pml-gateway secrets set`)")
    environ = {f"PML_USER_SECRET_{n}": v for n, v in secrets.items()}
    rewritten = _rewrite_secrets(entry)
    limits = _Limits(call_timeout_s=DEFAULT_CALL_TIMEOUT_S, max_result_bytes=DEFAULT_MAX_RESULT_BYTES)
    spec = _parse_server(where, name, rewritten, environ, limits, _Places(Path.home(), bin_dir))
    used = {secrets[n] for n in secret_names(entry)}
    return dataclasses.replace(spec, secrets=spec.secrets | worth_hiding(used))


def _rewrite_secrets(value: Any) -> Any:
    if isinstance(value, str):
        return SECRET_REF.sub(lambda m: f"${{PML_USER_SECRET_{m.group(1)}}}", value)
    if isinstance(value, list):
        return [_rewrite_secrets(v) for v in value]
    if isinstance(value, dict):
        return {k: _rewrite_secrets(v) for k, v in value.items()}
    return value


def _strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)


def normalise_server_name(raw: str, where: str) -> str:
    """A name usable in ``server:tool`` ids: letters, digits, ``_`` and ``-``; others become ``-``."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "-", raw.strip()).strip("-")[:48]
    if not name:
        raise ConfigError(f"{where}: the name needs at least one letter or digit")
    if name != raw:
        logger.warning("%s is called %r in tool ids (only letters, digits, _ and - are kept)", where, name)
    return name


def _expand(value: str, where: str, key: str, environ: Mapping[str, str]) -> str:
    def repl(match: re.Match[str]) -> str:
        var = match.group(1)
        if var not in environ:
            raise ConfigError(f"{where}: {key} uses ${{{var}}}, but the environment variable {var} is not set")
        return environ[var]

    return _VAR_RE.sub(repl, value)


def runs_this_gateway(entry: dict[str, Any], path: Path) -> bool:
    """Whether `entry` starts pml-gateway over this very servers file (Claude Desktop's file lists the gateway
    itself): with no ``--config``, or with this file's. A gateway over another file is a server like any other
    (a chained gateway)."""
    if not starts_pml_gateway(entry):
        return False
    args = _string_args(entry)
    env: dict[str, Any] = entry["env"] if isinstance(entry.get("env"), dict) else {}
    config = next((b for a, b in itertools.pairwise(args) if a == "--config"), None) or env.get("PML_CONFIG")
    if config is None:
        return True
    try:
        return Path(str(config)).expanduser().resolve() == path.expanduser().resolve()
    except OSError:
        return True


def starts_pml_gateway(entry: dict[str, Any]) -> bool:
    """Whether a stdio `entry` starts pml-gateway (its script, ``.exe`` on Windows, or ``python -m gateway``)."""
    args = _string_args(entry)
    command = PureWindowsPath(str(entry.get("command", ""))).name.lower()  # splits on / and \ alike
    return command in _GATEWAY_NAMES or args[:2] == ["-m", "gateway"]


def _string_args(entry: dict[str, Any]) -> list[str]:
    args = entry.get("args")
    return [a for a in args if isinstance(a, str)] if isinstance(args, list) else []


def _timeout_ms(doc: dict[str, Any], where: str, default_s: float) -> float:
    raw = doc.get("callTimeoutMs")
    if raw is None:
        return default_s
    if isinstance(raw, bool) or not isinstance(raw, int | float) or raw <= 0:
        raise ConfigError(f'{where}: "callTimeoutMs" must be a positive number of milliseconds, got {raw!r}')
    return float(raw) / 1000.0


def _max_bytes(doc: dict[str, Any], where: str, default: int) -> int:
    raw = doc.get("maxResultBytes")
    if raw is None:
        return default
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1024:
        raise ConfigError(f'{where}: "maxResultBytes" must be a whole number of bytes, at least 1024, got {raw!r}')
    return raw


def _expose(path: Path, value: Any) -> str:
    if value not in _EXPOSE_VALUES:
        raise ConfigError(f'{path}: "expose" must be "found", "search" or "all", got {value!r}')
    return str(value)


def _approval(path: Path, value: Any) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) and ":" in v for v in value):
        raise ConfigError(f'{path}: "approval" must be a list of "server:tool" ids')
    return frozenset(value)


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__
