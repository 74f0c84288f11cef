"""Foreign errors (mcp, OSError, anyio, pydantic) put into the gateway's words, in one place.

A server that cannot start gets a short *reason*, shown by `status` and kept on `ServerStatus.reason`; a
call that fails raises a `DownstreamError` subclass naming the server and the tool.
"""

from __future__ import annotations

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import ValidationError

from gateway.config import ServerSpec
from gateway.downstream.stdio import RESULT_TOO_LARGE
from gateway.errors import (
    CallTimeoutError,
    DownstreamError,
    ResultTooLargeError,
    ServerCrashedError,
    UnknownToolError,
)

CALL_FAILURES: tuple[type[BaseException], ...] = (
    MCPError,
    ValidationError,
    OSError,  # TimeoutError among them
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
)
"""What a tools/call on a live session can raise besides gateway errors and cancellation."""

HANDSHAKE_FAILURES: tuple[type[BaseException], ...] = (*CALL_FAILURES, RuntimeError)
"""The same for initialize + tools/list; `RuntimeError` is the SDK's unsupported protocol version."""


def spawn_reason(spec: ServerSpec, exc: OSError | ValueError) -> str:
    """Why the process could not be spawned: ``command not found: foo`` and the like."""
    if isinstance(exc, FileNotFoundError):
        if spec.cwd is not None and exc.filename == str(spec.cwd):
            return f"working directory not found: {spec.cwd}"
        return f"command not found: {spec.command}"
    if isinstance(exc, PermissionError):
        return f"command not executable: {spec.command}"
    if isinstance(exc, OSError):
        return f"cannot start {spec.command}: {exc.strerror or exc}"
    return f"cannot start {spec.command}: {exc}"


def handshake_reason(exc: BaseException, *, stage: str, timeout_s: float, stderr: str | None) -> str:
    """Why a spawned server did not get through `stage` (``initialize`` or ``tools/list``)."""
    if isinstance(exc, TimeoutError):
        return f"did not answer {stage} within {timeout_s:g} s"
    if _is_closed(exc):
        return f"exited during {stage}" + (f": {stderr}" if stderr else "")
    if isinstance(exc, MCPError):
        return f"{stage} failed: {exc.message}"
    if isinstance(exc, ValidationError):
        return f"answered {stage} with an invalid result ({exc.error_count()} errors)"
    return f"{stage} failed: {exc}"


def call_error(
    exc: BaseException, *, server: str, tool: str, timeout_s: float, crashed: bool, listed: bool
) -> DownstreamError:
    """The gateway error for a tools/call that raised `exc`; `crashed`: the connection ended meanwhile."""
    if isinstance(exc, TimeoutError):
        return CallTimeoutError(
            f"server {server!r} did not answer tools/call {tool!r} within {timeout_s:g} s", server=server
        )
    if crashed or (_is_closed(exc) and not isinstance(exc, MCPError)):
        return ServerCrashedError(
            f"server {server!r} exited during the call to {tool!r}; it is being restarted", server=server
        )
    if isinstance(exc, MCPError):
        if exc.code == RESULT_TOO_LARGE:
            message = f"server {server!r} answered tools/call {tool!r} with {exc.message}"
            return ResultTooLargeError(message, server=server)
        if not listed:
            return UnknownToolError(f"server {server!r} has no tool {tool!r} ({exc.message})", server=server)
        return DownstreamError(f"server {server!r} refused tools/call {tool!r}: {exc.message}", server=server)
    if isinstance(exc, ValidationError):
        message = f"server {server!r} answered tools/call {tool!r} with an invalid result"
        return DownstreamError(message, server=server)
    return DownstreamError(f"server {server!r} failed tools/call {tool!r}: {exc}", server=server)


def _is_closed(exc: BaseException) -> bool:
    if isinstance(exc, MCPError):
        return exc.code == types.CONNECTION_CLOSED
    return isinstance(exc, anyio.BrokenResourceError | anyio.ClosedResourceError | ConnectionError)
