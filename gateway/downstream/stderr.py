"""A downstream server's stderr, copied to the gateway's stderr line by line under the server's name.

Each server process gets a pipe of its own as stderr (never the gateway's stdout, which is the MCP wire). A
pump task copies it to ``sys.stderr`` as ``[server] line`` and keeps the last line, which names the cause
when a server dies during start (``exited during initialize: API key missing``). A line is the server's words,
not the gateway's: its configured secrets are replaced by ``***`` (a server may print its own token), and its
control characters and undecodable bytes become backslash escapes (``\\x00``, ``\\xff``, ``\\t``), so a log line is
one line of printable text whatever the server writes. The pipe also identifies
the process: on Linux the gateway's child whose fd 2 is this pipe is the server, which gives its pid
without reaching into the SDK's transport. Where pipes cannot be polled (Windows) stderr is inherited as is.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import TextIO

import anyio
import anyio.abc

from gateway.secrets import redact

logger = logging.getLogger(__name__)

STDERR_DRAIN_TIMEOUT_S = 1.0
"""How long a stopped server's last stderr output may take to arrive."""

_READ_SIZE = 65536
_MAX_LINE_CHARS = 4000
_REASON_CHARS = 200
_POLLABLE = sys.platform != "win32"
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class StderrCopy:
    """One server process's stderr; `errlog` goes to `stdio_client`, `last_line` to failure reasons."""

    def __init__(self, server: str, secrets: frozenset[str] = frozenset()) -> None:
        self._server = server
        self._secrets = secrets
        self._read_fd: int | None = None
        self._writer: TextIO | None = None
        self._ended = anyio.Event()
        self.last_line: str | None = None

    @property
    def errlog(self) -> TextIO:
        """What the child's stderr is bound to."""
        return self._writer or sys.stderr

    def spawned(self) -> int | None:
        """Drop the gateway's copy of the write end (EOF then means the child is gone); the child's pid."""
        if self._writer is None:
            return None
        self._writer.close()
        self._writer = None
        assert self._read_fd is not None
        return _child_with_stderr(os.fstat(self._read_fd).st_ino)

    @asynccontextmanager
    async def open(self) -> AsyncIterator[StderrCopy]:
        """Open the pipe and pump it; on exit wait (bounded, shielded) for the last lines, then close."""
        if not _POLLABLE:
            yield self
            return
        self._read_fd, write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        self._writer = os.fdopen(write_fd, "w", encoding="utf-8")
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pump, self._read_fd)
                try:
                    yield self
                finally:
                    await self._drain(tg)
        finally:
            self._close()

    async def _drain(self, tg: anyio.abc.TaskGroup) -> None:
        if self._writer is not None:  # the spawn failed: no child holds the write end
            self._writer.close()
            self._writer = None
        with anyio.CancelScope(shield=True), anyio.move_on_after(STDERR_DRAIN_TIMEOUT_S):
            await self._ended.wait()
        tg.cancel_scope.cancel()

    def _close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._read_fd is not None:
            anyio.notify_closing(self._read_fd)
            os.close(self._read_fd)
            self._read_fd = None

    async def _pump(self, fd: int) -> None:
        pending = b""
        try:
            while True:
                await anyio.wait_readable(fd)
                try:
                    chunk = os.read(fd, _READ_SIZE)
                except BlockingIOError:
                    continue
                if not chunk:
                    break
                pending = self._emit_lines(pending + chunk)
            if pending:
                self._emit(pending)
        finally:
            self._ended.set()

    def _emit_lines(self, data: bytes) -> bytes:
        """Write every complete line of `data`; return the unfinished rest (flushed if overlong)."""
        *lines, rest = data.split(b"\n")
        for line in lines:
            self._emit(line)
        if len(rest) > _MAX_LINE_CHARS:
            self._emit(rest)
            return b""
        return rest

    def _emit(self, raw: bytes) -> None:
        line = escaped(redact(raw.decode("utf-8", errors="backslashreplace").rstrip(), self._secrets))
        if not line:
            return
        self.last_line = line[:_REASON_CHARS]
        with suppress(OSError, ValueError):  # our own stderr closed: nothing left to tell
            sys.stderr.write(f"[{self._server}] {line}\n")
            sys.stderr.flush()


def escaped(text: str) -> str:
    """`text` with each control character (C0, DEL, C1, line and paragraph separators) as its backslash escape."""
    return _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)


def _child_with_stderr(inode: int) -> int | None:
    """The pid of this process's child whose stderr is the pipe `inode` (Linux /proc), else None."""
    target = f"pipe:[{inode}]"
    with suppress(OSError):
        for children in Path("/proc/self/task").glob("*/children"):
            for pid in children.read_text().split():
                with suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/2") == target:
                        return int(pid)
    return None
