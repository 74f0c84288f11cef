"""Users' own servers: one instance per (user, server), started on first use, stopped when idle.

Each instance is a `Connection` like a shared server's, with its owner task run here in a cancel scope of its
own, so stopping one (idle for `IDLE_S`, removed, or changed) never touches another. An instance's tools are
known once it has listed them; `ensure` starts an instance and waits (bounded) for that. The spec of a server is
resolved by the caller's `resolve` at each start, so a secret changed since is used by the next start.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import mcp_types as types

from gateway.backoff import Backoff
from gateway.config import ServerSpec
from gateway.downstream.connection import Connection
from gateway.errors import ServerUnavailableError, UnknownToolError
from gateway.models import ServerState, ToolDef
from gateway.ports import Ask, Progress

logger = logging.getLogger(__name__)

IDLE_S = 600.0
"""An instance no call used for this long is stopped (started again on its next use)."""
START_WAIT_S = 30.0
"""How long a first use waits for the instance to list its tools."""
REAP_EVERY_S = 30.0

Resolve = Callable[[str, str], Awaitable[ServerSpec | None]]
Listed = Callable[[str, str, Sequence[ToolDef]], Awaitable[None]]


@dataclass(slots=True)
class _Instance:
    connection: Connection
    scope: anyio.CancelScope
    listed: anyio.Event = field(default_factory=anyio.Event)
    last_used: float = field(default_factory=time.monotonic)
    calls: int = 0


async def _first_of(*waits: Callable[[], Awaitable[Any]]) -> None:
    """Return once any of `waits` returns."""
    async with anyio.create_task_group() as tg:
        async def one(wait: Callable[[], Awaitable[Any]]) -> None:
            await wait()
            tg.cancel_scope.cancel()

        for wait in waits:
            tg.start_soon(one, wait)


class UserServers:
    """The running instances of users' servers, keyed by (user id, server name)."""

    def __init__(self, *, resolve: Resolve, on_tools: Listed | None = None, idle_s: float = IDLE_S) -> None:
        """`on_tools(user_id, server, tools)` hears each listing of an instance."""
        self._resolve = resolve
        self._on_tools = on_tools
        self._idle_s = idle_s
        self._instances: dict[tuple[str, str], _Instance] = {}
        self._starting: dict[tuple[str, str], anyio.Lock] = {}
        self._tg: anyio.abc.TaskGroup | None = None
        self._backoff = Backoff(base_s=0.5, cap_s=30.0)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own every instance until cancelled (each stops its process on the way out), stopping idle ones."""
        async with anyio.create_task_group() as tg:
            self._tg = tg
            task_status.started()
            try:
                while True:
                    await anyio.sleep(min(REAP_EVERY_S, self._idle_s / 2))
                    self._reap()
            finally:
                self._tg = None

    def running(self, user_id: str) -> dict[str, list[ToolDef]]:
        """The user's running instances and the tools each listed."""
        return {name: inst.connection.tools for (user, name), inst in self._instances.items() if user == user_id}

    def stop(self, user_id: str, name: str) -> None:
        """Stop the instance (its server was removed or changed); the next use starts it anew."""
        instance = self._instances.pop((user_id, name), None)
        if instance is not None:
            instance.scope.cancel()

    async def ensure(self, user_id: str, name: str) -> list[ToolDef]:
        """The instance's tools, starting it first if it is not running; `UnknownToolError` for a server the user
        does not have, `ServerUnavailableError` when it failed to start (at once, with its reason) or does not list
        its tools in time."""
        instance = await self._instance(user_id, name)
        instance.calls += 1  # in use while it starts: never reaped as idle meanwhile
        try:
            with anyio.move_on_after(START_WAIT_S):
                await _first_of(instance.listed.wait, instance.connection.record.settled.wait)
                if instance.connection.status().state is not ServerState.FAILED:
                    await instance.listed.wait()  # running: its listing follows
        finally:
            instance.calls -= 1
            instance.last_used = time.monotonic()
        if not instance.listed.is_set():
            status = instance.connection.status()
            raise ServerUnavailableError(f"your server {name!r} is {status.state}: {status.reason or 'not ready'}",
                                         server=f"@{name}")
        return instance.connection.tools

    async def call_tool(self, user_id: str, name: str, tool: str, arguments: dict[str, Any] | None, *,
                        timeout_s: float | None = None, progress: Progress | None = None,
                        ask: Ask | None = None) -> types.CallToolResult:
        instance = await self._instance(user_id, name)
        instance.calls += 1
        try:
            await self.ensure(user_id, name)
            return await instance.connection.call_tool(tool, arguments, timeout_s, progress, ask)
        finally:
            instance.calls -= 1
            instance.last_used = time.monotonic()

    async def _instance(self, user_id: str, name: str) -> _Instance:
        key = (user_id, name)
        if (instance := self._instances.get(key)) is not None:
            instance.last_used = time.monotonic()
            return instance
        async with self._starting.setdefault(key, anyio.Lock()):
            if (instance := self._instances.get(key)) is not None:
                return instance
            spec = await self._resolve(user_id, name)
            if spec is None:
                raise UnknownToolError(f"you have no server {name!r} (see my_servers)", server=f"@{name}")
            if self._tg is None:
                raise ServerUnavailableError("users' servers are not running (the gateway is stopping)",
                                             server=f"@{name}")
            instance = self._start(key, spec, self._tg)
            self._instances[key] = instance
            return instance

    def _start(self, key: tuple[str, str], spec: ServerSpec, tg: anyio.abc.TaskGroup) -> _Instance:
        async def listed(server: str, tools: Sequence[ToolDef]) -> None:
            instance.listed.set()
            if self._on_tools is not None:
                await self._on_tools(key[0], key[1], tools)

        connection = Connection(spec, on_tools=listed, on_status=None, backoff=self._backoff)
        instance = _Instance(connection=connection, scope=anyio.CancelScope())

        async def own() -> None:
            with instance.scope:
                await connection.run()
            if self._instances.get(key) is instance:
                del self._instances[key]
            logger.info("user server %s of user %s stopped", spec.name, key[0])

        tg.start_soon(own)
        logger.info("user server %s of user %s starting: %s", spec.name, key[0], spec.describe())
        return instance

    def _reap(self) -> None:
        now = time.monotonic()
        for key, instance in list(self._instances.items()):
            idle = now - instance.last_used > self._idle_s and instance.calls == 0
            failed = instance.connection.status().state is ServerState.FAILED and now - instance.last_used > 60
            if idle or failed:
                self.stop(*key)
