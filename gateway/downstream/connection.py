"""One downstream server's owner task: spawn, initialize, list, serve calls, restart with backoff.

`Connection.run` is the only task that enters and leaves the server's `stdio_client` and `ClientSession`
(the SDK cannot close a stdio client from another task), and it lives as long as the supervisor. Calls do
not pass through it: `call_tool` sends on the live session from the caller's own task, so the proxy path
is one request. The owner learns that the process exited from the end of its read stream (`watch`)::

    STARTING ──> RUNNING ──(exit)──> RESTARTING ──(backoff)──> RUNNING ...
       └──(cannot start)──> FAILED ──(backoff)──> STARTING ...
    DISABLED: never started.   STOPPED: the supervisor was cancelled; the process is gone.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
import anyio.lowlevel
import mcp_types as types
from mcp.client import ClientSession, IncomingMessage
from mcp.client._transport import ReadStream, WriteStream
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.message import SessionMessage

from gateway.backoff import Backoff
from gateway.config import ServerSpec
from gateway.downstream.elicit import Elicitations
from gateway.downstream.listing import list_tools
from gateway.downstream.logs import ServerLog
from gateway.downstream.record import WAITING, ServerRecord
from gateway.downstream.stderr import StderrCopy
from gateway.downstream.stdio import stdio_client
from gateway.downstream.translate import (
    CALL_FAILURES,
    HANDSHAKE_FAILURES,
    call_error,
    handshake_reason,
    spawn_reason,
)
from gateway.downstream.watch import Item, WatchedReadStream
from gateway.errors import ServerUnavailableError
from gateway.models import ServerState, ServerStatus, ToolDef
from gateway.ports import Ask, Progress, StatusChanged, ToolsListed

logger = logging.getLogger(__name__)

INITIALIZE_TIMEOUT_S = 30.0
LIST_TIMEOUT_S = 30.0


class _StartFailed(Exception):
    """The server could not be started; `reason` says why, for `status`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class _HandshakeFailed:
    """The spawned server failed `stage`; worded as a reason once its last stderr line is in.

    A value, not an exception: raised inside the transport's task groups it would come out wrapped.
    """

    stage: str
    timeout_s: float
    cause: BaseException


class Connection:
    """A downstream server: its owner task, its record, and its live session for calls."""

    def __init__(
        self, spec: ServerSpec, *, on_tools: ToolsListed, on_status: StatusChanged | None, backoff: Backoff
    ) -> None:
        self.spec = spec
        self.record = ServerRecord(spec.name, disabled=spec.disabled, on_tools=on_tools, on_status=on_status)
        self._backoff = backoff
        self._params = StdioServerParameters(
            command=spec.command, args=list(spec.args), env=dict(spec.env) or None, cwd=spec.cwd
        )
        self._session: ClientSession | None = None
        self._elicitations = Elicitations(spec.name)
        self._last_failure: str | None = None
        self._wake = anyio.Event()
        self._relist_wanted = False
        self._scope: anyio.CancelScope | None = None
        self._spawning = False
        self._stopping = False

    @property
    def tools(self) -> list[ToolDef]:
        return list(self.record.tools)

    def status(self) -> ServerStatus:
        return self.record.snapshot()

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None, timeout_s: float | None, progress: Progress | None = None,
        ask: Ask | None = None,
    ) -> types.CallToolResult:
        """Send tools/call on the live session from the caller's task; waits (in the timeout) for a start.

        With `progress` the request carries a progress token and the server's ``notifications/progress`` for
        it go to `progress`. With `ask`, a question the server asks while this is its only call in flight goes
        to `ask` (see `elicit`), and the timeout waits for the answer. A caller cancelled (or timed out)
        abandons the request, and the SDK tells the server with ``notifications/cancelled``.
        """
        timeout = self.spec.call_timeout_s if timeout_s is None else timeout_s
        request = types.CallToolRequest(params=types.CallToolRequestParams(name=name, arguments=arguments))
        session = self._session
        try:
            with anyio.fail_after(timeout) as deadline:
                if session is None:
                    session = await self._wait_running()
                # Not session.call_tool: it validates structured output (re-listing tools for unknown
                # names); the gateway forwards results and leaves judging them to its client.
                with self._elicitations.calling(ask, deadline, timeout):
                    return await session.send_request(request, types.CallToolResult, progress_callback=progress)
        except CALL_FAILURES as exc:
            if session is None:
                raise self._unavailable(f"is still {self.record.state} after {timeout:g} s") from exc
            if self._stopping:
                raise self._unavailable("is stopping: the gateway is shutting down") from exc
            raise call_error(
                exc,
                server=self.spec.name,
                tool=name,
                timeout_s=timeout,
                crashed=session is not self._session,
                listed=name in self.record.tool_names,
            ) from exc

    async def _wait_running(self) -> ClientSession:
        while self._session is None and self.record.state in WAITING:
            await self.record.changed.wait()
        if self._session is None:
            raise self._unavailable()
        return self._session

    def _unavailable(self, detail: str | None = None) -> ServerUnavailableError:
        if detail is None:
            state, reason = self.record.state, self.record.reason
            verb = "failed to start" if state is ServerState.FAILED else f"is {state}"
            detail = f"{verb}: {reason}" if reason else verb
        return ServerUnavailableError(f"server {self.spec.name!r} {detail}", server=self.spec.name)

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The owner task: start the server, restart it whenever it exits or fails; until cancelled.

        Cancellation reaches the server through a relay that never interrupts a spawn: a spawn cut short
        leaves asyncio's half-made subprocess transport killing its child but never reaping it.
        """
        self._scope = anyio.CancelScope()
        task_status.started()
        try:
            # Let the starter resume first: a native cancel of `tg.start` then lands here, before any spawn.
            await anyio.lowlevel.checkpoint()
            logger.info("starting server %r: %s", self.spec.name, self.spec.describe())
            async with anyio.create_task_group() as relay:
                relay.start_soon(self._stop_when_cancelled)
                with anyio.CancelScope(shield=True), self._scope:
                    await self._supervise()
                relay.cancel_scope.cancel()
        finally:
            self._session = None
            self.record.pid = None
            self.record.set_state(ServerState.STOPPED, "the gateway stopped")

    async def _stop_when_cancelled(self) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            self._stopping = True
            if not self._spawning and self._scope is not None:
                self._scope.cancel()

    def _spawn_over(self) -> None:
        """The spawn returned: a stop that waited for it may cancel now."""
        self._spawning = False
        if self._stopping and self._scope is not None:
            self._scope.cancel()

    async def _supervise(self) -> None:
        failures = 0
        await self.record.publish()
        while True:
            failures = await self._run_once(failures)
            await anyio.sleep(self._backoff.delay(failures))
            self.record.restarts += 1
            if self.record.state is ServerState.FAILED:
                self.record.set_state(ServerState.STARTING, self.record.reason)
                await self.record.publish()

    async def _run_once(self, failures: int) -> int:
        """One server process from spawn to exit; returns the failure count for the backoff."""
        try:
            up_for_s = await self._connect()
        except Exception as exc:  # the owner's top level: one server's surprise must not stop the others
            reason = exc.reason if isinstance(exc, _StartFailed) else f"internal error: {exc!r}"
            if not isinstance(exc, _StartFailed):
                logger.exception("server %r: unexpected error in its owner task", self.spec.name)
            elif reason != self._last_failure:  # a server failing the same way at every retry logs once
                logger.warning("server %r failed to start: %s", self.spec.name, reason)
            self._last_failure = reason
            self.record.set_state(ServerState.FAILED, reason)
            await self.record.publish()
            return failures + 1
        failures = self._backoff.after_crash(failures, up_for_s)
        delay_s = self._backoff.delay(failures)
        logger.warning("server %r exited after %.1f s; restarting in %g s", self.spec.name, up_for_s, delay_s)
        await self.record.publish()
        return failures

    async def _connect(self) -> float:
        """Spawn, hand-shake and serve one process; how long it was up, once it has exited."""
        stderr = StderrCopy(self.spec.name, self.spec.secrets)
        try:
            async with stderr.open():
                outcome = await self._spawn_and_serve(stderr)
        finally:
            self.record.pid = None
        if isinstance(outcome, str):
            raise _StartFailed(outcome)
        if isinstance(outcome, _HandshakeFailed):
            reason = handshake_reason(
                outcome.cause, stage=outcome.stage, timeout_s=outcome.timeout_s, stderr=stderr.last_line
            )
            raise _StartFailed(self.spec.redact(reason))  # the server's own words (an MCP error) may hold a secret
        return outcome

    async def _spawn_and_serve(self, stderr: StderrCopy) -> float | str | _HandshakeFailed:
        """Seconds up, or why it did not start: a spawn reason or a failed handshake."""
        self._wake = anyio.Event()
        self._relist_wanted = False
        self._spawning = True  # from here a stop waits for the spawn to return, so take an earlier one now
        try:
            await anyio.lowlevel.checkpoint_if_cancelled()
            if self.spec.url is not None:
                async with _http_client(self.spec.url, self.spec.headers) as (read, write):
                    self._spawn_over()
                    return await self._open_session(read, write)
            async with stdio_client(
                self._params, errlog=stderr.errlog, max_message_bytes=self.spec.max_result_bytes, name=self.spec.name
            ) as (read, write):
                self._spawn_over()
                self.record.pid = stderr.spawned()
                return await self._open_session(read, write)
        except (OSError, ValueError) as exc:  # only the spawn's arrive bare; the transport groups the rest
            return spawn_reason(self.spec, exc)
        finally:
            self._spawn_over()
        return 0.0  # reached only if the transport swallowed an exception: count it as an immediate exit

    async def _open_session(
        self, read: ReadStream[Item], write: WriteStream[SessionMessage]
    ) -> float | _HandshakeFailed:
        watched = WatchedReadStream(read, on_end=self._on_end)
        async with ClientSession(watched, write, message_handler=self._on_message,
                                 logging_callback=ServerLog(self.spec.name, self.spec.secrets),
                                 elicitation_callback=self._elicitations) as session:
            failure = await self._handshake(session)
            if failure is not None:
                return failure
            up_since = anyio.current_time()
            await self._serve(session, watched)
            return anyio.current_time() - up_since
        return 0.0  # as above

    async def _handshake(self, session: ClientSession) -> _HandshakeFailed | None:
        stage, timeout_s = "initialize", INITIALIZE_TIMEOUT_S
        try:
            with anyio.fail_after(timeout_s):
                await session.initialize()
            stage, timeout_s = "tools/list", LIST_TIMEOUT_S
            with anyio.fail_after(timeout_s):
                tools = await list_tools(session, self.spec.name)
        except HANDSHAKE_FAILURES as exc:
            return _HandshakeFailed(stage, timeout_s, exc)
        await self.record.publish_tools(tools)
        return None

    async def _serve(self, session: ClientSession, watched: WatchedReadStream) -> None:
        """Be RUNNING until the process exits; re-list whenever the server says its tools changed."""
        if watched.ended:
            self.record.set_state(ServerState.RESTARTING, "the process exited")
            return
        self._session = session
        self._last_failure = None
        self.record.set_state(ServerState.RUNNING)
        record = self.record
        logger.info("server %r is running: pid %s, %d tools", self.spec.name, record.pid, len(record.tools))
        await self.record.publish()
        while not watched.ended:
            await self._wake.wait()
            self._wake = anyio.Event()
            if self._relist_wanted and not watched.ended:
                self._relist_wanted = False
                await self._relist(session)

    async def _relist(self, session: ClientSession) -> None:
        try:
            with anyio.fail_after(LIST_TIMEOUT_S):
                tools = await list_tools(session, self.spec.name)
        except HANDSHAKE_FAILURES as exc:
            if self._session is session:
                logger.warning("server %r: re-listing tools failed: %r", self.spec.name, exc)
            return
        await self.record.publish_tools(tools)

    def _on_end(self) -> None:
        """The read stream ran dry: the process is gone. Runs in the session's reader, before calls fail."""
        self._session = None
        self._wake.set()
        if self.record.state is ServerState.RUNNING:
            self.record.set_state(ServerState.RESTARTING, "the process exited")

    async def _on_message(self, message: IncomingMessage) -> None:
        if isinstance(message, types.ToolListChangedNotification):
            self._relist_wanted = True
            self._wake.set()
        elif isinstance(message, Exception):
            logger.warning("server %r wrote a line that is not JSON-RPC: %s", self.spec.name, message)


@contextlib.asynccontextmanager
async def _http_client(url: str, headers: Mapping[str, str]) -> AsyncIterator[Any]:
    """The streams of a streamable HTTP server (another gateway, say), its HTTP client closed after them."""
    http = create_mcp_http_client(headers=dict(headers))
    async with http, streamable_http_client(url, http_client=http) as streams:
        yield streams
