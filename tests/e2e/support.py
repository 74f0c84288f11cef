"""Helpers for end-to-end tests: a servers file of real servers, the gateway as a stdio subprocess."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import psutil
from mcp import Client, StdioServerParameters

from tests.eventually import eventually

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def servers_file(tmp_path: Path, *, extra: dict[str, Any] | None = None, **options: Any) -> Path:
    """notes, faulty and time (published, from PyPI), plus whatever `extra` adds."""
    servers: dict[str, Any] = {
        "notes": {"command": sys.executable, "args": [str(ROOT / "examples/notes_server.py")],
                  "env": {"NOTES_FILE": str(tmp_path / "notes.json")}},
        "faulty": {"command": sys.executable, "args": [str(ROOT / "examples/faulty_server.py")],
                   "callTimeoutMs": 1500},
        "time": {"command": str(BIN / "mcp-server-time"), "args": ["--local-timezone", "UTC"]},
    }
    servers.update(extra or {})
    path = tmp_path / "servers.json"
    path.write_text(json.dumps({"mcpServers": servers, **options}))
    return path


def gateway_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "gateway", *args]


def gateway_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PML_")}
    return {**env, "PML_LOG_LEVEL": "INFO", **extra}


SETTLE_S = 60.0
"""How long a new gateway's servers may take to start (a loaded machine, two test workers)."""


@asynccontextmanager
async def gateway_client(config: Path, *flags: str, settle: bool = True, **options: Any) -> AsyncIterator[Client]:
    """The SDK's own client (with `options`: its callbacks, say), spawning `python -m gateway serve` over stdio;
    with `settle`, once no server is still starting (a test's first call would otherwise spend its short timeout
    waiting for the server's start)."""
    command = gateway_command("serve", "--config", str(config), *flags)
    params = StdioServerParameters(command=command[0], args=command[1:], env=gateway_env(), cwd=str(ROOT))
    async with Client(params, read_timeout_seconds=60, **options) as client:
        if settle:
            await _servers_started(client)
        yield client


async def _servers_started(client: Client, *, states: frozenset[str] = frozenset({"starting"})) -> None:
    """Wait until search_tools reports no server in `states` (or cannot answer: its index is unavailable)."""

    async def settled() -> bool:
        result = await client.call_tool("search_tools", {"query": "servers started", "limit": 1})
        down = (result.structured_content or {}).get("unavailable_servers", [])
        return bool(result.is_error) or all(server["state"] not in states for server in down)

    await eventually(settled, timeout_s=SETTLE_S, interval_s=0.1, what=f"no server {' or '.join(sorted(states))}")


async def servers_back(client: Client) -> None:
    """Wait until no server is restarting or starting again (a call's short timeout would be spent on it)."""
    await _servers_started(client, states=frozenset({"starting", "restarting"}))


def gateway_processes(config: Path) -> list[psutil.Process]:
    """The gateway processes serving `config`, found among this test's descendants."""
    me = psutil.Process()
    return [p for p in me.children(recursive=True) if str(config) in " ".join(_cmdline(p)) and "serve" in _cmdline(p)]


def _cmdline(process: psutil.Process) -> list[str]:
    try:
        return process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return []


async def wait_gone(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    """The pids still alive after `timeout_s` (polling: a process's death sends us no event)."""
    with anyio.move_on_after(timeout_s):
        while any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in pids):
            await anyio.sleep(0.05)
    return [p for p in pids if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]


async def search(client: Client, query: str, **args: Any) -> dict[str, Any]:
    result = await client.call_tool("search_tools", {"query": query, **args})
    assert not result.is_error, result.content
    payload: dict[str, Any] = result.structured_content
    return payload


async def search_until(client: Client, query: str, tool_id: str, timeout_s: float = 60.0) -> dict[str, Any]:
    """Search until `tool_id` is indexed (the gateway indexes in the background after its servers start)."""

    async def found() -> dict[str, Any] | None:
        payload = await search(client, query, limit=10)
        return payload if any(r["tool_id"] == tool_id for r in payload["results"]) else None

    payload: dict[str, Any] = await eventually(found, timeout_s=timeout_s, interval_s=0.2,
                                               what=f"{tool_id} found for {query!r}")
    return payload


def text_of(result: Any) -> str:
    return "\n".join(getattr(c, "text", "") for c in result.content)
