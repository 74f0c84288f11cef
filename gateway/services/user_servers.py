"""Each HTTP user's own servers: add, remove, list, and the spec each start runs with, secrets filled in.

A user's server is an ``mcpServers`` entry kept as written (``${secret:NAME}`` references, never values). Its
tools are the user's only: their ids are ``@<server>:<tool>``, resolved against the calling user, so another user
neither calls nor sees them. A user adds servers reached over HTTP; a stdio server runs a command on the
gateway's host, so only an admin adds one (the command line, or an admin's own meta-tool call).
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from gateway.config import ServerSpec, secret_names, user_server_spec
from gateway.errors import ConfigError, InvalidRequestError
from gateway.lru import LRU
from gateway.models import ToolDef

MIN_SIMILARITY = 0.25
"""A user's tool less alike than this to a query is not offered."""
VECTORS_KEPT = 2_000
Embed = Callable[[list[str]], Awaitable[np.ndarray]]

PREFIX = "@"
"""The first character of a user's tool id (``@github:create_issue``): no shared server's name can start so."""
_PLACEHOLDER = "placeholder-secret-value"


class EntryStore(Protocol):
    async def put(self, user_id: str, name: str, entry: dict[str, Any]) -> None: ...

    async def set_tools(self, user_id: str, name: str, tools: list[dict[str, Any]]) -> None: ...

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
    """One of a user's servers as listed: its entry as written, whether it runs, and its tools (as it listed them
    when it last ran)."""

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

    def __init__(self, *, store: EntryStore, secrets: Secrets | None, bin_dir: Path | None = None,
                 embed: Embed | None = None) -> None:
        """`embed` turns tool texts into unit vectors, for `find`."""
        self._store = store
        self._secrets = secrets
        self._bin_dir = bin_dir
        self._embed = embed
        self._vectors: LRU[str, np.ndarray] = LRU(VECTORS_KEPT)
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
        return [UserServer(row.name, dict(row.entry), row.name in running,
                           tuple(running.get(row.name) or [_tool_def(row.name, doc) for doc in row.tools]))
                for row in await self._store.list(user_id)]

    async def remember(self, user_id: str, name: str, tools: Sequence[ToolDef]) -> None:
        """Keep what the user's server listed: found by that user's searches without starting it."""
        await self._store.set_tools(user_id, name, [_tool_doc(t) for t in tools])

    async def find(self, user_id: str, query: np.ndarray, *, limit: int) -> builtins.list[tuple[ToolDef, float]]:
        """The user's tools closest in meaning to the embedded `query`, at least `MIN_SIMILARITY` alike."""
        tools = [_tool_def(row.name, doc) for row in await self._store.list(user_id) for doc in row.tools]
        if not tools or self._embed is None:
            return []
        missing = [t.embed_text for t in tools if t.embed_text not in self._vectors]
        if missing:
            for text, vector in zip(missing, await self._embed(missing), strict=True):
                self._vectors[text] = vector
        scored = [(t, float(np.dot(self._vectors[t.embed_text], query))) for t in tools]
        return sorted([s for s in scored if s[1] >= MIN_SIMILARITY], key=lambda s: -s[1])[:limit]

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


def _tool_doc(tool: ToolDef) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema,
            "annotations": tool.annotations, "title": tool.title}


def _tool_def(server: str, doc: dict[str, Any]) -> ToolDef:
    return ToolDef(server=f"{PREFIX}{server}", name=str(doc.get("name", "")),
                   description=str(doc.get("description") or ""),
                   input_schema=doc.get("input_schema") or {"type": "object"}, annotations=doc.get("annotations"),
                   title=doc.get("title"))


def tool_schemas(user_tools: Mapping[str, list[ToolDef]]) -> dict[str, dict[str, Any]]:
    """Input schema by user tool id (``@server:tool``)."""
    return {f"{PREFIX}{server}:{t.name}": t.input_schema or {"type": "object"}
            for server, tools in user_tools.items() for t in tools}
