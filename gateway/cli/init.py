"""`init`: a starter servers file, optionally filled with the servers Claude Desktop or Claude Code
already run, then what to paste into those clients so that they start the gateway over it.

Imported entries keep their names, commands, args and env as written. Two entries whose names give one tool-id
prefix keep the first; every entry left out is listed with why (neither stdio nor streamable HTTP, a name taken,
or pml-gateway: this one, or one over another servers file, whose servers are better imported than chained).
An entry that ran in a known directory (a Claude Code project's, an imported file's) gets that directory as its
``cwd``, so its relative paths keep their meaning in the new file. Only the run callable reads the process (how
the gateway was started, its platform); the rest is passed the environment, the platform and the launcher.
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PureWindowsPath
from typing import TYPE_CHECKING, Any, TextIO

from gateway.config import (
    HTTP_TYPES,
    SERVER_KEYS,
    find_command,
    normalise_server_name,
    runs_this_gateway,
    starts_pml_gateway,
)
from gateway.errors import ConfigError
from gateway.settings import default_config_path

if TYPE_CHECKING:
    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers

CLIENTS = ("claude-desktop", "claude-code")
_RULES = (
    'A stdio server runs in this file\'s directory (or in its "cwd"), so relative paths in it are relative to this '
    "directory; a bare command (python, mcp-server-time) is looked for in the gateway's Python environment first, "
    "then on PATH. ${VAR} is replaced by the environment variable VAR."
)
_STARTER = (
    'Servers for pml-gateway, in Claude Desktop\'s shape. Add each one under "mcpServers": "name": {"command": '
    '"...", "args": ["..."], "env": {"KEY": "value"}} for a server started over stdio, "name": {"type": "http", '
    '"url": "https://..."} for one reached over streamable HTTP. ' + _RULES
)


def register(sub: Subparsers) -> None:
    """``init [--config FILE] [--import SOURCE]... [--force]``: no common options, as it opens no database."""
    command = sub.add_parser("init", help="write a servers file (optionally importing Claude Desktop's or Claude "
                          "Code's servers) and print how to add the gateway to those clients")
    command.add_argument("--config", help="the servers file to write (default: servers.json in your config "
                      "directory, e.g. ~/.config/pml-gateway; env PML_CONFIG)")
    command.add_argument("--import", dest="imports", action="append", metavar="SOURCE",
                      help="claude-desktop, claude-code, or a JSON file with \"mcpServers\"; repeatable, first "
                      "name wins")
    command.add_argument("--force", action="store_true", help="overwrite the servers file if it exists")
    command.add_argument("--log-level", help="DEBUG, INFO, WARNING, ERROR (env PML_LOG_LEVEL)")
    command.set_defaults(run=_run)


async def _run(invocation: Invocation) -> int:
    """The facts of this process (how it was started, its platform) are read here and passed down."""
    bin_dir = Path(sys.executable).parent
    return init(
        (invocation.settings.config_path or default_config_path()).absolute(), invocation.args.imports or [],
        force=invocation.args.force, launcher=gateway_launcher(sys.argv[0], sys.executable, bin_dir=bin_dir),
        bin_dir=bin_dir, environ=invocation.environ, platform=sys.platform, out=sys.stdout,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Launcher:
    """How a client starts this very gateway: an absolute command and the arguments that come before ``serve``."""

    command: str
    args: tuple[str, ...] = ()

    def argv(self, config: Path) -> list[str]:
        return [self.command, *self.args, "serve", "--config", str(config)]


@dataclass(frozen=True, slots=True)
class _Entry:
    """One server read from a source, with the directory it ran in when that is known."""

    name: str
    entry: Any
    source: str
    ran_in: Path | None = None


def gateway_launcher(argv0: str, executable: str, *, bin_dir: Path) -> Launcher:
    """The running gateway as a client must start it: the ``pml-gateway`` script by its absolute path (a client
    gets no venv on its PATH), else this interpreter with ``-m gateway`` (started as ``python -m gateway``)."""
    script = PureWindowsPath(argv0)  # splits on both separators; the path itself stays `argv0`
    if script.name.lower() not in ("pml-gateway", "pml-gateway.exe"):
        return Launcher(command=executable, args=("-m", "gateway"))
    path = Path(argv0) if len(script.parts) > 1 else bin_dir / argv0
    if not path.exists() and path.with_name(path.name + ".exe").exists():
        path = path.with_name(path.name + ".exe")  # Windows' launcher may leave .exe off argv[0]
    return Launcher(command=str(path.absolute()))


def client_config_path(client: str, environ: Mapping[str, str], platform: str) -> Path:
    """Where Claude Desktop (per platform) or Claude Code (``~/.claude.json``) keeps its MCP servers."""
    home = Path(environ.get("HOME") or environ.get("USERPROFILE") or "~").expanduser()
    if client == "claude-code":
        return home / ".claude.json"
    if platform == "darwin":
        folder = home / "Library" / "Application Support"
    elif platform == "win32":
        folder = Path(environ["APPDATA"]) if environ.get("APPDATA") else home / "AppData" / "Roaming"
    else:
        folder = Path(environ.get("XDG_CONFIG_HOME") or home / ".config")
    return folder / "Claude" / "claude_desktop_config.json"


def init(
    target: Path, sources: Sequence[str], *, force: bool, launcher: Launcher, bin_dir: Path,
    environ: Mapping[str, str], platform: str, out: TextIO,
) -> int:
    """Write `target` from `sources` (or a starter), refusing to overwrite it without `force`; print to `out`
    what was imported or skipped and what to paste into Claude Desktop and Claude Code."""
    found = [entry for source in sources for entry in _read_source(source, environ, platform)]
    kept, skipped = _merge(found, target)
    servers = {item.name: _rebased(item, target.parent) for item in kept}
    if not servers and find_command("mcp-server-time", bin_dir=bin_dir, search_path=environ.get("PATH")):
        servers = {"time": {"command": "mcp-server-time"}}
    comment = f"Imported by pml-gateway init from {', '.join(sources)}. {_RULES}" if kept else _STARTER
    _write(target, {"$comment": comment, "mcpServers": servers}, force=force)
    out.write(_report(target, servers, skipped))
    from_code = [item.name for item in kept if item.source.startswith("claude-code")]
    out.write(_instructions(target, launcher, sources, from_code, environ, platform))
    return 0


def _read_source(source: str, environ: Mapping[str, str], platform: str) -> list[_Entry]:
    """The entries of one source; Claude Code's come from its user scope, then from each of its projects."""
    client = source in CLIENTS
    path = client_config_path(source, environ, platform) if client else Path(source).expanduser()
    document = _read_document(path, source)
    if not client and not isinstance(document.get("mcpServers"), dict):
        raise ConfigError(f'cannot import {path}: it has no "mcpServers" object')
    entries = _entries(document.get("mcpServers"), source, None if client else path.absolute().parent)
    projects = document.get("projects") if source == "claude-code" else None
    for project, settings in (projects or {}).items() if isinstance(projects, dict) else ():
        servers = settings.get("mcpServers") if isinstance(settings, dict) else None
        entries += _entries(servers, f"claude-code project {project}", Path(project))
    return entries


def _read_document(path: Path, source: str) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        hint = "" if source in CLIENTS else f" (a source is {', '.join(CLIENTS)} or a JSON file)"
        raise ConfigError(f"cannot import {source}: {path} not found{hint}") from None
    except OSError as exc:
        raise ConfigError(f"cannot import {source}: cannot read {path}: {exc.strerror}") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"cannot import {source}: {path}: invalid JSON at line {exc.lineno}: {exc.msg}") from exc
    if not isinstance(document, dict):
        raise ConfigError(f"cannot import {source}: {path} is not a JSON object")
    return document


def _entries(servers: Any, source: str, ran_in: Path | None) -> list[_Entry]:
    if not isinstance(servers, dict):
        return []
    return [_Entry(str(name), entry, source, ran_in) for name, entry in servers.items()]


def _merge(found: list[_Entry], target: Path) -> tuple[list[_Entry], list[str]]:
    """The entries kept (first name wins), and one line per entry left out or changed, saying why."""
    kept: dict[str, _Entry] = {}
    notes: list[str] = []
    for item in found:
        reason = _unusable(item, target)
        key = _tool_prefix(item.name) if reason is None else ""
        if reason is None and key in kept:
            first = kept[key]
            reason = f"same as the one from {first.source}" if first.entry == item.entry else (
                f'the name is taken by "{first.name}" from {first.source}')
        if reason is not None:
            notes.append(f'skipped "{item.name}" from {item.source}: {reason}')
            continue
        dropped = sorted(set(item.entry) - SERVER_KEYS)
        if dropped:
            notes.append(f'"{item.name}" from {item.source}: left out {", ".join(dropped)} (not used by the gateway)')
        kept[key] = replace(item, entry={k: v for k, v in item.entry.items() if k in SERVER_KEYS})
    return list(kept.values()), notes


def _unusable(item: _Entry, target: Path) -> str | None:
    if not isinstance(item.entry, dict):
        return "not an object"
    kind = item.entry.get("type", "http" if "url" in item.entry else "stdio")
    if kind != "stdio" and kind not in HTTP_TYPES:
        return f'its type "{kind}" is neither stdio nor streamable HTTP (http)'
    if runs_this_gateway(item.entry, target):
        return "it runs pml-gateway itself"
    if starts_pml_gateway(item.entry):
        return "it runs pml-gateway over another servers file (to take that file's servers, --import it)"
    return None if re.search(r"[A-Za-z0-9]", item.name) else "its name has no letter or digit"


def _tool_prefix(name: str) -> str:
    """The name as it prefixes tool ids (two entries with one prefix would collide in the servers file)."""
    return normalise_server_name(name, f'server "{name}"')


def _rebased(item: _Entry, target_dir: Path) -> dict[str, Any]:
    """A stdio entry that ran in a known directory other than the new file's runs there still: it gets that
    directory as its ``cwd``, and a relative command path is made absolute (``${VAR}`` values are left alone)."""
    entry: dict[str, Any] = dict(item.entry)
    base = item.ran_in
    if base is None or base == target_dir or entry.get("type", "http" if "url" in entry else "stdio") != "stdio":
        return entry
    cwd, command = entry.get("cwd"), entry.get("command")
    if cwd is None or (isinstance(cwd, str) and "$" not in cwd and not Path(cwd).expanduser().is_absolute()):
        entry["cwd"] = str(base / cwd) if cwd else str(base)
    if isinstance(command, str) and "$" not in command and _is_relative_path(command):
        entry["command"] = str(base / command)
    return entry


def _is_relative_path(command: str) -> bool:
    return ("/" in command or os.sep in command) and not Path(command).expanduser().is_absolute()


def _write(target: Path, document: dict[str, Any], *, force: bool) -> None:
    """Create `target` (and its directory); an existing file is kept unless `force`."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w" if force else "x", encoding="utf-8") as file:
            file.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    except FileExistsError:
        raise ConfigError(f"{target} already exists; pass --force to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {target}: {exc.strerror or exc}") from exc


def _report(target: Path, servers: Mapping[str, Any], notes: list[str]) -> str:
    head = (f"Wrote {target} with {len(servers)} server(s): {', '.join(servers)}." if servers else
            f'Wrote {target} with no servers yet: add yours under "mcpServers".')
    return "\n".join([head, *(f"  {note}" for note in notes), "", ""])


def _instructions(
    target: Path, launcher: Launcher, sources: Sequence[str], from_code: list[str], environ: Mapping[str, str],
    platform: str,
) -> str:
    """The Claude Desktop entry and the Claude Code command, both with absolute paths (a client starts the
    gateway with an unspecified working directory and PATH)."""
    import shlex
    import subprocess

    command, *args = launcher.argv(target)
    snippet = json.dumps({"mcpServers": {"pml": {"command": command, "args": args}}}, indent=2)
    desktop = client_config_path("claude-desktop", environ, platform)
    instead = " in place of the servers imported from it" if "claude-desktop" in sources else ""
    join = subprocess.list2cmdline if platform == "win32" else shlex.join
    lines = [f'Claude Desktop: put this entry in "mcpServers" of {desktop}{instead}, then restart Claude Desktop:',
             "", snippet, "", "Claude Code (in every project):", "",
             f"  {join(['claude', 'mcp', 'add', '--scope', 'user', 'pml', '--', command, *args])}", ""]
    if from_code:
        lines += [f"and remove from Claude Code the servers now in the gateway ({', '.join(from_code)}: claude mcp "
                  "remove NAME), so that they do not run twice.", ""]
    return "\n".join(lines)
