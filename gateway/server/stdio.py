"""MCP over this process's stdin and stdout, on asyncio pipes.

Why not the SDK's `stdio_server`: it reads stdin in a worker thread, so a SIGTERM cannot end a read in
progress (the gateway would wait for the client's next line to exit), and every message pays a thread hop.
When stdin and stdout are pipes, sockets (how MCP clients spawn a server) or terminals, this transport reads and
writes them on the event loop instead; on anything else (a regular file, which never blocks a read) it falls
back to the SDK's transport.
While serving, fd 0 reads the null device and fd 1 points at stderr, so no child and no stray write can
touch the wire; both are restored on exit.
"""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

MAX_MESSAGE_BYTES = 64 * 1024 * 1024

Streams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


@asynccontextmanager
async def stdio_transport() -> AsyncIterator[Streams]:
    """The read and write streams of the MCP session on stdin/stdout."""
    if not (_is_stream(0) and _is_stream(1)):
        async with stdio_server() as streams:
            yield streams
        return
    saved = _divert_std_fds()
    try:
        reader, writer = await _open_pipes(saved[0], saved[1])
        async with _pumps(reader, writer) as streams:
            yield streams
    finally:
        _restore_std_fds(saved)


def _is_stream(fd: int) -> bool:
    """A pipe, socket or character device (a terminal): what asyncio can read and write without a thread."""
    mode = os.fstat(fd).st_mode
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)


def _divert_std_fds() -> tuple[int, int]:
    """Keep the wire on private descriptors; point fd 0 at /dev/null and fd 1 at stderr."""
    saved = (os.dup(0), os.dup(1))
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    return saved


def _restore_std_fds(saved: tuple[int, int]) -> None:
    for fd, private in zip((0, 1), saved, strict=True):
        try:
            os.dup2(private, fd)
            os.close(private)
        except OSError:
            pass


async def _open_pipes(stdin_fd: int, stdout_fd: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=MAX_MESSAGE_BYTES)
    protocol = asyncio.StreamReaderProtocol(reader)
    await loop.connect_read_pipe(lambda: protocol, os.fdopen(os.dup(stdin_fd), "rb", buffering=0))
    transport, flow = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(os.dup(stdout_fd), "wb", buffering=0)
    )
    return reader, asyncio.StreamWriter(transport, flow, None, loop)


@asynccontextmanager
async def _pumps(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> AsyncIterator[Streams]:
    incoming_send, incoming = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    outgoing, outgoing_receive = anyio.create_memory_object_stream[SessionMessage](0)

    async def read_lines() -> None:
        async with incoming_send:
            while line := await _read_line(reader):
                try:
                    message = types.jsonrpc_message_adapter.validate_json(line, by_name=False)
                except ValueError as exc:
                    await incoming_send.send(exc)
                    continue
                await incoming_send.send(SessionMessage(message))

    async def write_lines() -> None:
        async with outgoing_receive:
            async for session_message in outgoing_receive:
                data = session_message.message.model_dump_json(by_alias=True, exclude_unset=True)
                writer.write(data.encode() + b"\n")
                await writer.drain()

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(read_lines)
            tg.start_soon(write_lines)
            yield incoming, outgoing
            tg.cancel_scope.cancel()
    finally:
        writer.close()


async def _read_line(reader: asyncio.StreamReader) -> bytes:
    """The next non-empty line, or b"" at end of input (a client that closes stdin ends the session)."""
    while True:
        try:
            line = await reader.readline()
        except (ValueError, ConnectionError):
            return b""
        if not line or line.strip():
            return line
