"""Each HTTP user's own servers: add, remove, list, and the spec each start runs with, secrets filled in.

A user's server is an ``mcpServers`` entry kept as written (``${secret:NAME}`` references, never values). Its
tools are the user's only: their ids are ``@<server>:<tool>``, resolved against the calling user, so another user
neither calls nor sees them. A user adds servers reached over HTTP; a stdio server runs a command on the
gateway's host, so only an admin adds one (the command line, or an admin's own meta-tool call).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gateway.config import ServerSpec, secret_names, user_server_spec
from gateway.errors import ConfigError, InvalidRequestError
from gateway.models import ToolDef

PREFIX = "@"
"""The first character of a user's tool id (``@github:create_issue``): no shared server's name can start so."""
_PLACEHOLDER = "placeholder-secret-value"


class EntryStore(Protocol):
    async def put(self, user_id: str, name: str, entry: dict[str, Any]) -> None: ...

    async def get(self, user_id: str, name: str) -> dict[str, Any] | None: ...

    async def list(self, user_id: str) -> list[Any]: ...

    async def delete(self, user_id: str, name: str) -> bool: ...


class Secrets(Protocol):
    async def get(self, user_id: str, name: str) -> str | None: ...


class Instances(Protocol):
    def running(self, user_id: str) -> dict[str, list[ToolDef]]: ...

    def stop(self, user_id: str, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class UserServer:
    """One of a user's servers as listed: its entry as written, and its tools when it runs."""

    name: str
    entry: dict[str, Any]
    running: bool
    tools: tuple[ToolDef, ...]


def split_tool_id(tool_id: str) -> tuple[str, str] | None:
    """``(server, tool)`` of a user's tool id ``@server:tool``; None for any other id."""
    if not tool_id.startswith(PREFIX):
        return None
    server, colon, tool = tool_id[1:].partition(":")
    return (server, tool) if colon and server and tool else None


class UserServerService:
    """Users' server entries, validated on the way in and resolved (secrets filled) at each start."""

    def __init__(self, *, store: EntryStore, secrets: Secrets | None, bin_dir: Path | None = None) -> None:
        self._store = store
        self._secrets = secrets
        self._bin_dir = bin_dir
        self._instances: Instances | None = None

    def attach(self, instances: Instances) -> None:
        """The running instances, stopped when their entry changes."""
        self._instances = instances

    async def add(self, user_id: str, name: str, entry: Any, *, allow_stdio: bool) -> None:
        """Keep `entry` as `name` (replacing it; a running instance stops, to start anew with it)."""
        placeholders = {n: _PLACEHOLDER for n in secret_names(entry)}
        try:
            user_server_spec(name, entry, placeholders, allow_stdio=allow_stdio, bin_dir=self._bin_dir)
        except ConfigError as exc:
            raise InvalidRequestError(str(exc), field="server") from None
        await self._store.put(user_id, name, dict(entry))
        if self._instances is not None:
            self._instances.stop(user_id, name)

    async def remove(self, user_id: str, name: str) -> bool:
        if self._instances is not None:
            self._instances.stop(user_id, name)
        return await self._store.delete(user_id, name)

    async def list(self, user_id: str) -> list[UserServer]:
        running = self._instances.running(user_id) if self._instances is not None else {}
        return [UserServer(row.name, dict(row.entry), row.name in running, tuple(running.get(row.name, ())))
                for row in await self._store.list(user_id)]

    async def resolve(self, user_id: str, name: str) -> ServerSpec | None:
        """The spec to start `name` of `user_id` with, its secrets opened now; None when there is no such server.
        A secret that is missing, or a store that cannot open it, is a `ConfigError` naming the secret."""
        entry = await self._store.get(user_id, name)
        if entry is None:
            return None
        values: dict[str, str] = {}
        for secret in secret_names(entry):
            value = await self._secrets.get(user_id, secret) if self._secrets is not None else None
            if value is not None:
                values[secret] = value
        return user_server_spec(name, entry, values, allow_stdio=True, bin_dir=self._bin_dir)


def tool_schemas(user_tools: Mapping[str, list[ToolDef]]) -> dict[str, dict[str, Any]]:
    """Input schema by user tool id (``@server:tool``)."""
    return {f"{PREFIX}{server}:{t.name}": t.input_schema or {"type": "object"}
            for server, tools in user_tools.items() for t in tools}
