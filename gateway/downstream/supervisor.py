"""All downstream servers: one owner task each, started at once, stopped together; calls routed by name."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import anyio.abc
import mcp_types as types

from gateway.backoff import Backoff
from gateway.config import ServerSpec
from gateway.downstream.connection import Connection
from gateway.errors import ConfigError, ServerUnavailableError, UnknownToolError
from gateway.models import ServerStatus, ToolDef
from gateway.ports import Ask, Progress, StatusChanged, ToolsListed


class Supervisor:
    """Starts, watches and restarts the downstream MCP servers, and proxies tool calls to them.

    `run` owns every server process: it returns (or is cancelled) only after all of them are stopped.
    `call_tool` is the hot path and runs in the caller's task. Constructing a supervisor does no I/O.
    """

    def __init__(
        self,
        *,
        servers: Sequence[ServerSpec],
        on_tools: ToolsListed,
        on_status: StatusChanged | None = None,
        restart_base_s: float = 0.5,
        restart_cap_s: float = 30.0,
    ) -> None:
        backoff = Backoff(base_s=restart_base_s, cap_s=restart_cap_s)
        self._connections: dict[str, Connection] = {}
        for spec in servers:
            if spec.name in self._connections:
                raise ConfigError(f"two downstream servers are called {spec.name!r}; rename one")
            self._connections[spec.name] = Connection(
                spec, on_tools=on_tools, on_status=on_status, backoff=backoff
            )
        self._running = False

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start every enabled server's owner task; report started at once, without waiting for any server.

        Runs until cancelled; on the way out each owner stops its process (close stdin, SIGTERM, SIGKILL of
        the process group, every step bounded), so no downstream process outlives the gateway.
        """
        if self._running:
            raise RuntimeError("Supervisor.run is already running")
        self._running = True
        try:
            async with anyio.create_task_group() as tg:
                for connection in self._connections.values():
                    if not connection.spec.disabled:
                        await tg.start(connection.run)
                task_status.started()
                await self._announce_disabled()
                await anyio.sleep_forever()
        finally:
            self._running = False

    async def call_tool(
        self, server: str, name: str, arguments: dict[str, Any] | None, *, timeout_s: float | None = None,
        progress: Progress | None = None, ask: Ask | None = None,
    ) -> types.CallToolResult:
        """Call `name` on `server` and return its result as is (``is_error`` results included).

        Waits for a starting or restarting server within the same timeout (default: the server's
        ``call_timeout_s``). Raises `UnknownToolError`, `ServerUnavailableError` (failed, disabled, stopped),
        `CallTimeoutError`, `ServerCrashedError`, or `DownstreamError` for a protocol error. The server's
        progress for this call goes to `progress`, and its questions to the user to `ask`.
        """
        connection = self._connections.get(server)
        if connection is None:
            raise UnknownToolError(f"no downstream server is called {server!r}", server=server)
        return await connection.call_tool(name, arguments, timeout_s, progress, ask)

    def statuses(self) -> list[ServerStatus]:
        """A snapshot of every configured server, disabled ones included, in configuration order."""
        return [connection.status() for connection in self._connections.values()]

    def tools(self, server: str) -> list[ToolDef]:
        """The tools `server` listed last (empty until it first ran)."""
        connection = self._connections.get(server)
        if connection is None:
            raise UnknownToolError(f"no downstream server is called {server!r}", server=server)
        return connection.tools

    async def wait_settled(self, timeout_s: float) -> None:
        """Wait until every enabled server has been RUNNING or FAILED at least once.

        Raises `ServerUnavailableError` naming the servers still starting after `timeout_s`.
        """
        pending = [c for c in self._connections.values() if not c.spec.disabled]
        try:
            with anyio.fail_after(timeout_s):
                for connection in pending:
                    await connection.record.settled.wait()
        except TimeoutError:
            late = [c.spec.name for c in pending if not c.record.settled.is_set()]
            if not late:
                return
            raise ServerUnavailableError(
                f"servers still starting after {timeout_s:g} s: {', '.join(late)}", server=late[0]
            ) from None

    async def _announce_disabled(self) -> None:
        for connection in self._connections.values():
            if connection.spec.disabled:
                await connection.record.publish()
