"""Which downstream tools each client sees in `tools/list`, and telling clients when that changes.

Clients such as Claude Desktop and Claude Code give the model only the tools `tools/list` returned and refuse any
other name. With ``"expose": "found"`` the tools a client's searches return join that client's list (with their
real schemas), at most `FOUND_KEPT` of them, the least recently found leaving first, and the client is told
(``notifications/tools/list_changed``) so that it lists again.

"A client" is a connection on the handshake protocol versions (one per stdio pipe, one per HTTP session). A
2026-07-28 client has no connection that outlives a request: its found tools are kept per user (over HTTP, the
API key's user; on stdio there is one), and it hears of changes through ``subscriptions/listen``.
"""

from __future__ import annotations

import itertools
import logging
import weakref
from collections.abc import Iterable, Sequence
from typing import Any

import anyio
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway.lru import LRU
from gateway.server.principal import gateway_user

logger = logging.getLogger(__name__)

FOUND_KEPT = 32
"""Found tools listed per client at most; the least recently found leave first."""
LISTED_SHARE = 0.3
"""A search hit joins the client's list when it scores at least this share of the best hit."""
NOTIFY_TIMEOUT_S = 5.0


class FoundTools:
    """Per client, the tool ids its searches returned (pure bookkeeping).

    The list keeps the order in which tools were first found, so that a client's tool list only grows at its end
    (what a model has already read stays the same); the tool found least recently leaves first.
    """

    def __init__(self, capacity: int = FOUND_KEPT) -> None:
        self._capacity = capacity
        self._by_connection: weakref.WeakKeyDictionary[Connection, LRU[str, int]] = weakref.WeakKeyDictionary()
        self._by_user: dict[str | None, LRU[str, int]] = {}
        self._added = itertools.count()

    def add(self, client: Connection | str | None, tool_ids: Iterable[str]) -> bool:
        """Note that `client` found `tool_ids` (most relevant first); True if its list of tools changed."""
        found, ids = self._found(client), list(tool_ids)
        before = set(found)
        for tool_id in ids[: self._capacity]:  # listed in the order found: the best hit of one search first
            found.setdefault(tool_id, next(self._added))
        for tool_id in reversed(ids[: self._capacity]):  # kept the longest: the best hit is the most recently found
            found.touch(tool_id)
        return set(found) != before

    def of(self, client: Connection | str | None) -> list[str]:
        """The tool ids `client` found, in the order they were first found."""
        found = self._by_connection.get(client) if isinstance(client, Connection) else self._by_user.get(client)
        return [tool_id for tool_id, _ in sorted((found or {}).items(), key=lambda item: item[1])]

    def _found(self, client: Connection | str | None) -> LRU[str, int]:
        if isinstance(client, Connection):
            return self._by_connection.setdefault(client, LRU(self._capacity))
        return self._by_user.setdefault(client, LRU(self._capacity))


def worth_listing(hits: Sequence[tuple[str, float]]) -> list[str]:
    """The tool ids of a search's `(tool_id, score)` hits that join the client's list: those scoring at least
    `LISTED_SHARE` of the best hit (the long tail of a search stays reachable through call_tool)."""
    best = max((score for _, score in hits), default=0.0)
    return [tool_id for tool_id, score in hits if score >= LISTED_SHARE * best]


class ListWatchers:
    """The clients to tell when their `tools/list` changes: handshake connections seen listing tools, and the
    ``subscriptions/listen`` streams of 2026 clients (through `bus`)."""

    def __init__(self) -> None:
        self.bus = InMemorySubscriptionBus()
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()

    def watch(self, ctx: ServerRequestContext[Any]) -> None:
        """Remember the connection of a request that listed tools (a handshake client)."""
        if (connection := _connection(ctx)) is not None:
            self._connections.add(connection)

    async def tell(self, ctx: ServerRequestContext[Any]) -> None:
        """Tell the client of this request that its tools changed."""
        connection = _connection(ctx)
        if connection is None:
            await self.bus.publish(ToolsListChanged())
        else:
            await _notify(connection)

    async def tell_all(self) -> None:
        """Tell every client that the tools changed (a downstream server's tools did)."""
        for connection in list(self._connections):
            await _notify(connection)
        await self.bus.publish(ToolsListChanged())


def client_of(ctx: ServerRequestContext[Any]) -> Connection | str | None:
    """Whose found tools a request reads and adds to: its connection, or for a 2026 client its user."""
    return _connection(ctx) or gateway_user()


def _connection(ctx: ServerRequestContext[Any]) -> Connection | None:
    """The connection of a handshake client (it lives as long as the client); None for a 2026 client, whose
    connection is built for one request. The SDK keeps it private on the request's session: an SDK that moved
    it answers None, and found tools are then kept per user."""
    if ctx.session.protocol_version in MODERN_PROTOCOL_VERSIONS:
        return None
    connection = getattr(ctx.session, "_connection", None)
    return connection if isinstance(connection, Connection) else None


async def _notify(connection: Connection) -> None:
    try:
        with anyio.fail_after(NOTIFY_TIMEOUT_S):
            await connection.send_tool_list_changed()
    except Exception:
        logger.debug("could not tell a client that its tool list changed", exc_info=True)
