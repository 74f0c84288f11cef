"""MCP over this process's stdin and stdout, on asyncio pipes.

Why not the SDK's `stdio_server`: it reads stdin in a worker thread, so a SIGTERM cannot end a read in
progress (the gateway would wait for the client's next line to exit), and every message pays a thread hop.
When stdin and stdout are pipes, sockets (how MCP clients spawn a server) or terminals, this transport reads and
writes them on the event loop instead; on anything else (a regular file, which never blocks a read) it falls
back to the SDK's transport.
While serving, fd 0 reads the null device and fd 1 points at stderr, so no child and no stray write can
touch the wire; both are restored on exit.

A line that is no message is answered here, since the SDK's session drops what its read stream yields as an
exception: a line that cannot be parsed gets a parse error (id null), a parsed one that is no valid message an
invalid-request error with its id when it is a request, and a line longer than `MAX_MESSAGE_BYTES` the same,
after it is skipped piece by piece. Each refusal is logged and the next line is served.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import stat
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import mcp_types as types
import pydantic_core
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.server.stdio import stdio_server
from mcp.shared.message import SessionMessage

logger = logging.getLogger(__name__)

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""The longest message (one stdin line, its newline not counted) the gateway reads; a longer one is refused."""
_PIECE_BYTES = 1024 * 1024
"""The pipe reader's buffer limit: a long line is read in pieces this large, and an oversize one skipped in them."""
_HEAD_BYTES = 4096
"""How much of an oversize line is kept to find its request id."""

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
    reader = asyncio.StreamReader(limit=_PIECE_BYTES)
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
    answers = outgoing.clone()

    async def read_lines() -> None:
        async with incoming_send, answers:
            while line := await _read_line(reader):
                message = _decode(line)
                if isinstance(message, _Refusal):
                    reply = message.reply
                    logger.warning("refused a message on stdin (id %s): %s", reply.id, reply.error.message)
                    await answers.send(SessionMessage(reply))
                else:
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


@dataclass(frozen=True, slots=True)
class _Oversize:
    """A line longer than `MAX_MESSAGE_BYTES`, already skipped; its start names the request (if it can)."""

    head: bytes


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A line that is no message, and the error that answers it."""

    reply: types.JSONRPCError


async def _read_line(reader: asyncio.StreamReader) -> bytes | _Oversize:
    """The next non-empty line, or b"" at end of input (a client that closes stdin ends the session)."""
    while True:
        line = await _read_one_line(reader)
        if isinstance(line, _Oversize) or not line or line.strip():
            return line


async def _read_one_line(reader: asyncio.StreamReader) -> bytes | _Oversize:
    """One line, joined from pieces; past `MAX_MESSAGE_BYTES` the rest is skipped without being kept."""
    pieces: list[bytes] = []
    size = 0
    while True:
        piece, ended = await _read_piece(reader)
        size += len(piece) - piece.endswith(b"\n")
        if size > MAX_MESSAGE_BYTES:
            head = (pieces[0] if pieces else piece)[:_HEAD_BYTES]
            while not ended:
                _, ended = await _read_piece(reader)
            return _Oversize(head)
        pieces.append(piece)
        if ended:
            return b"".join(pieces)


async def _read_piece(reader: asyncio.StreamReader) -> tuple[bytes, bool]:
    """Up to and with the next newline and True; a piece of a longer line and False; (b"", True) at the end."""
    try:
        return await reader.readuntil(b"\n"), True
    except asyncio.IncompleteReadError as exc:  # end of input: the last line may lack its newline
        return exc.partial, True
    except asyncio.LimitOverrunError as exc:  # no newline within the limit: take what is buffered, no newline in it
        return await reader.readexactly(exc.consumed), False
    except ConnectionError:
        return b"", True


def _decode(line: bytes | _Oversize) -> types.JSONRPCMessage | _Refusal:
    """The message on `line`, or why it is none (parse error, invalid request, too large) as an error to send."""
    if isinstance(line, _Oversize):
        return _refusal(_head_request_id(line.head), types.INVALID_REQUEST,
                        f"Invalid request: a message may be at most {MAX_MESSAGE_BYTES} bytes")
    try:
        return types.jsonrpc_message_adapter.validate_json(line, by_name=False)
    except ValueError as exc:
        reason = _reason(exc)
    try:
        document = json.loads(line)  # laxer than pydantic (lone surrogates, NaN): the id may still be found
    except (ValueError, RecursionError):  # deep nesting raises RecursionError here
        return _refusal(None, types.PARSE_ERROR, f"Parse error: {reason}")
    return _refusal(_request_id(document), types.INVALID_REQUEST, f"Invalid request: {reason}")


def _reason(exc: ValueError) -> str:
    """The first thing pydantic found wrong, without the input it quotes or its documentation link."""
    if not isinstance(exc, pydantic_core.ValidationError):
        return str(exc)
    first = exc.errors(include_url=False, include_input=False)[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"{where}: {first['msg']}" if where else first["msg"]


def _request_id(document: object) -> types.RequestId | None:
    """The id of a request (not a notification or a response: answering those would confuse the client)."""
    if not isinstance(document, dict) or "method" not in document:
        return None
    found = document.get("id")
    return found if isinstance(found, str) or (isinstance(found, int) and not isinstance(found, bool)) else None


def _head_request_id(head: bytes) -> types.RequestId | None:
    """The request id at the start of an oversize line, if the cut left it whole (not the last value read)."""
    try:
        document = pydantic_core.from_json(head, allow_partial=True)
    except ValueError:
        return None
    whole = isinstance(document, dict) and list(document)[-1:] != ["id"]
    return _request_id(document) if whole else None


def _refusal(request_id: types.RequestId | None, code: int, message: str) -> _Refusal:
    error = types.ErrorData(code=code, message=message)
    return _Refusal(types.JSONRPCError(jsonrpc="2.0", id=request_id, error=error))
