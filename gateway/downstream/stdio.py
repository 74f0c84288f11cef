"""A downstream server over stdio, read as bytes: a bad byte is a bad line, an oversize message is refused.

The SDK's `stdio_client` decodes the server's stdout as one text stream and splits it by re-joining its
buffer with every chunk. One invalid UTF-8 byte then kills its reader (the session never learns: every call
times out), and a 20 MB line costs quadratic copying and all of its memory while every other call waits.
This transport keeps the SDK's process handling (spawn, the shielded, bounded shutdown) and replaces the
reader: lines are split from bytes in linear time, each is decoded on its own (invalid bytes replaced and the
line logged), and a message over `max_message_bytes` is read past without being kept: its request gets
a `RESULT_TOO_LARGE` error instead. An unexpected failure of the reader ends the read stream at once, so the
owner sees the connection end and restarts the server.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TextIO

import anyio
import anyio.lowlevel
import mcp_types as types
from anyio.abc import ByteReceiveStream
from anyio.streams.memory import MemoryObjectSendStream
from mcp.client import stdio as sdk_stdio
from mcp.client._transport import TransportStreams
from mcp.client.stdio import StdioServerParameters, get_default_environment
from mcp.shared.message import SessionMessage

logger = logging.getLogger(__name__)

RESULT_TOO_LARGE = -32050
"""The JSON-RPC error code (implementation-defined range) of an answer the gateway refused for its size."""

_HEAD_BYTES = 256
_ID_AT_START = re.compile(rb'^\s*\{\s*(?:"jsonrpc"\s*:\s*"2\.0"\s*,\s*)?"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")')
_ID_AT_END = re.compile(rb'"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*\}\s*$')

Item = SessionMessage | Exception


@dataclass(frozen=True, slots=True)
class _Oversize:
    """A line longer than the limit: its first and last bytes (where a JSON-RPC id sits) and its size."""

    head: bytes
    tail: bytes
    size: int


class LineSplitter:
    """Bytes in, whole lines out, in linear time; a line over `limit` bytes comes out as an `_Oversize`."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._line = bytearray()
        self._head: bytes | None = None
        self._tail = b""
        self._size = 0

    def feed(self, chunk: bytes) -> list[bytes | _Oversize]:
        """The lines `chunk` completes (without their newline)."""
        lines: list[bytes | _Oversize] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._take(chunk[start:end])
            lines.append(self._finish())
            start = end + 1
        self._take(chunk[start:])
        return lines

    def _take(self, piece: bytes) -> None:
        self._size += len(piece)
        if self._head is not None:
            self._tail = (self._tail + piece)[-_HEAD_BYTES:]
            return
        self._line += piece
        if len(self._line) > self._limit:
            self._head, self._tail = bytes(self._line[:_HEAD_BYTES]), bytes(self._line[-_HEAD_BYTES:])
            self._line = bytearray()  # give the memory back now, not at the line's end

    def _finish(self) -> bytes | _Oversize:
        done: bytes | _Oversize
        if self._head is not None:
            done = _Oversize(self._head, self._tail, self._size)
            self._head, self._tail = None, b""
        else:
            done = bytes(self._line)
            self._line = bytearray()
        self._size = 0
        return done


def decode_line(line: bytes, server: str) -> str:
    """The line as text; invalid UTF-8 is replaced (and logged) rather than ending the connection."""
    try:
        return line.decode()
    except UnicodeDecodeError as exc:
        logger.warning(
            "server %r wrote a line that is not valid UTF-8 (byte 0x%02x at offset %d of %d); invalid bytes replaced",
            server, line[exc.start], exc.start, len(line),
        )
        return line.decode(errors="replace")


def parse_line(text: str) -> Item:
    """One JSON-RPC message, or the parse error as a value for the session to report."""
    try:
        return SessionMessage(types.jsonrpc_message_adapter.validate_json(text, by_name=False))
    except ValueError as exc:
        return exc


def refusal(oversize: _Oversize, limit: int, server: str) -> SessionMessage | None:
    """The error answer for an oversize message's request, if its id can be read from its ends."""
    found = _ID_AT_START.match(oversize.head) or _ID_AT_END.search(oversize.tail)
    logger.warning(
        "server %r sent a message of %d bytes, over its limit of %d (maxResultBytes); %s",
        server, oversize.size, limit, "its request is answered with an error" if found else "dropped",
    )
    if found is None:
        return None
    request_id = json.loads(found[1])
    message = f"{oversize.size:,} bytes, over the limit of {limit:,} bytes (maxResultBytes)"
    error = types.ErrorData(code=RESULT_TOO_LARGE, message=message, data={"bytes": oversize.size, "limit": limit})
    return SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error))


async def pump_lines(
    stdout: ByteReceiveStream, send: MemoryObjectSendStream[Item], *, limit: int, server: str
) -> None:
    """Read `stdout` to its end, sending each line's message (or parse error, or refusal) to `send`."""
    splitter = LineSplitter(limit)
    async for chunk in stdout:
        for line in splitter.feed(chunk):
            if isinstance(line, _Oversize):
                item: Item | None = refusal(line, limit, server)
            else:
                item = parse_line(decode_line(line, server)) if line.strip() else None
            if item is not None:
                await send.send(item)


@asynccontextmanager
async def stdio_client(
    server: StdioServerParameters, *, errlog: TextIO, max_message_bytes: int, name: str
) -> AsyncGenerator[TransportStreams, None]:
    """Spawn `server` and exchange JSON-RPC lines with it, as the SDK's `stdio_client` does, with this
    module's reader. Raises `OSError` or `ValueError` if the process cannot be spawned."""
    command = await sdk_stdio._get_executable_command(server.command)
    process = await sdk_stdio._create_platform_compatible_process(
        command=command, args=server.args, env=get_default_environment() | (server.env or {}), errlog=errlog,
        cwd=server.cwd,
    )
    # No awaits until the task group is entered: a cancellation in the gap would leak the live process.
    read_send, read_stream = anyio.create_memory_object_stream[Item](0)
    write_stream, write_receive = anyio.create_memory_object_stream[SessionMessage](0)
    writer_done = anyio.Event()

    async def reader() -> None:
        assert process.stdout is not None
        async with read_send:
            try:
                await pump_lines(process.stdout, read_send, limit=max_message_bytes, server=name)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                pass  # the session is gone, or our own shutdown closed stdout under the read
            except Exception:  # the connection's top level: end the stream so the owner restarts the server
                logger.exception("server %r: reading its stdout failed; the connection is closed", name)
                return
            await sdk_stdio._drain_stdout(process)

    async def writer() -> None:
        assert process.stdin is not None
        try:
            async with write_receive:
                async for message in write_receive:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True) + "\n"
                    await process.stdin.send(data.encode(errors="replace"))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError):
            await read_send.aclose()  # the server may live on: end the session rather than hang a request
        finally:
            writer_done.set()

    async def shutdown() -> None:
        """The SDK's sequence: stop traffic, let the writer flush (bounded), stop the server, close all."""
        read_stream.close()
        write_stream.close()
        with anyio.move_on_after(sdk_stdio._WRITER_FLUSH_TIMEOUT):
            await writer_done.wait()
        await sdk_stdio._stop_server_process(process)
        await sdk_stdio._aclose_all(read_stream, write_stream, read_send, write_receive)
        await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(reader)
        tg.start_soon(writer)
        try:
            yield read_stream, write_stream
        finally:
            with anyio.CancelScope(shield=True):
                await shutdown()
            tg.cancel_scope.cancel()
    await anyio.lowlevel.cancel_shielded_checkpoint()
