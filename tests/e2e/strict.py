"""A client that behaves like Claude Desktop and Claude Code: the model sees only what `tools/list` returned.

It calls only names present in its current tool list (anything else is refused here, as those clients refuse
it), lists again when the server says the list changed (``notifications/tools/list_changed`` on the handshake
protocol, a ``subscriptions/listen`` event on 2026-07-28), and reads search results from their text, which is
all such a client hands its model.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
from mcp import Client, types

from tests.e2e.support import gateway_client, text_of

LIST_CHANGED_S = 10.0
_HIT = re.compile(r"^\d+\. (\S+)", re.MULTILINE)


class NotListed(AssertionError):
    """The model asked for a tool its client never showed it."""


class StrictClient:
    """The SDK's client, restricted to the tools it was shown."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.tools: dict[str, types.Tool] = {}
        self.changed = anyio.Event()
        self.notified = 0

    async def list_tools(self) -> dict[str, types.Tool]:
        self.changed = anyio.Event()
        self.tools = {tool.name: tool for tool in (await self.client.list_tools()).tools}
        return self.tools

    def list_changed(self) -> None:
        self.notified += 1
        self.changed.set()

    async def relist_when_told(self) -> dict[str, types.Tool]:
        """Wait for the server to say the list changed, then list again (what Claude's clients do)."""
        with anyio.fail_after(LIST_CHANGED_S):
            await self.changed.wait()
        return await self.list_tools()

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        if name not in self.tools:
            raise NotListed(f"{name!r} is not in the tool list: {sorted(self.tools)}")
        return await self.client.call_tool(name, arguments)

    async def search(self, query: str, **options: Any) -> tuple[list[str], str]:
        """The tool ids a search found, as its text shows them (what the model reads), and that text."""
        result = await self.call("search_tools", {"query": query, **options})
        assert not result.is_error, text_of(result)
        text = text_of(result)
        return _HIT.findall(text), text


@asynccontextmanager
async def strict_client(config: Path, *flags: str, mode: str = "legacy") -> AsyncIterator[StrictClient]:
    """A strict client over stdio, at once (no search made to wait for the servers: it would find tools; give it
    an indexed `config`); ``legacy`` speaks the handshake protocol as Claude's clients do today, ``2026-07-28``
    the stateless one (it listens for list changes)."""
    holder: list[StrictClient] = []

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ToolListChangedNotification) and holder:
            holder[0].list_changed()

    async with gateway_client(config, *flags, settle=False, mode=mode, message_handler=on_message) as client:
        strict = StrictClient(client)
        holder.append(strict)
        async with anyio.create_task_group() as tg:
            if mode != "legacy":
                await tg.start(_listen, client, strict)
            await strict.list_tools()
            yield strict
            tg.cancel_scope.cancel()


async def _listen(client: Client, strict: StrictClient, *, task_status: anyio.abc.TaskStatus[None]) -> None:
    async with client.listen(tools_list_changed=True) as events:
        task_status.started()
        async for _event in events:
            strict.list_changed()
