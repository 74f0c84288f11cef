"""The end of a downstream connection, observed where it happens: the transport's read stream running dry.

`stdio_client` closes its read stream when the server's stdout reaches EOF, which is when the process exits
(or closes stdout, which for MCP is the same thing). The session's dispatcher reads that stream in its own
task and, on the end, fails every in-flight request with ``CONNECTION_CLOSED``. Wrapping the stream lets the
owner learn of the end *before* those requests fail, so a caller can tell a crash from a peer's error, and
without polling the process or adding a task hop per message.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio
from mcp.client._transport import ReadStream
from mcp.shared.message import SessionMessage

Item = SessionMessage | Exception


class WatchedReadStream:
    """A `ReadStream` that calls `on_end` once, synchronously, when the wrapped stream ends."""

    def __init__(self, inner: ReadStream[Item], on_end: Callable[[], None]) -> None:
        self._inner = inner
        self._on_end = on_end
        self.ended = False

    @property
    def last_context(self) -> Any:
        """The sender's context snapshot, for dispatchers that look for one."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> Item:
        try:
            return await self._inner.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            self._end()
            raise

    def __aiter__(self) -> WatchedReadStream:
        return self

    async def __anext__(self) -> Item:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def __aenter__(self) -> WatchedReadStream:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _end(self) -> None:
        if not self.ended:
            self.ended = True
            self._on_end()
