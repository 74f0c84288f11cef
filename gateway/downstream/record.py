"""What is known of one downstream server (state, reason, tools, pid, restarts), and who is told of changes.

The supervisor's callbacks are awaited in the server's owner task, each bounded by a named timeout; a
callback that raises or overruns is logged and abandoned, never allowed to stop the owner.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio

from gateway.models import ServerState, ServerStatus, ToolDef
from gateway.ports import StatusChanged, ToolsListed

logger = logging.getLogger(__name__)

STATUS_CALLBACK_TIMEOUT_S = 10.0
TOOLS_CALLBACK_TIMEOUT_S = 600.0
"""`on_tools` may index and embed a whole catalogue; it still may not hold the owner forever."""

WAITING = frozenset({ServerState.STARTING, ServerState.RESTARTING})
_SETTLED = frozenset({ServerState.RUNNING, ServerState.FAILED, ServerState.STOPPED})


class ServerRecord:
    """One server's observable side; `changed` fires on every state change, `settled` once for good."""

    def __init__(
        self, name: str, *, disabled: bool, on_tools: ToolsListed, on_status: StatusChanged | None
    ) -> None:
        self.name = name
        self.state = ServerState.DISABLED if disabled else ServerState.STARTING
        self.reason: str | None = "disabled in the servers file" if disabled else None
        self.tools: list[ToolDef] = []
        self.tool_names: frozenset[str] = frozenset()
        self.restarts = 0
        self.pid: int | None = None
        self.changed = anyio.Event()
        self.settled = anyio.Event()
        """Set once the server has been RUNNING or FAILED (or was stopped)."""
        self._on_tools = on_tools
        self._on_status = on_status

    def snapshot(self) -> ServerStatus:
        return ServerStatus(
            name=self.name,
            state=self.state,
            reason=self.reason,
            tool_count=len(self.tools),
            restarts=self.restarts,
            pid=self.pid,
        )

    def set_state(self, state: ServerState, reason: str | None = None) -> None:
        """Change state now, waking everyone waiting on `changed`; `publish` tells the callback later."""
        self.state = state
        self.reason = reason
        if state in _SETTLED:
            self.settled.set()
        self.changed.set()
        self.changed = anyio.Event()

    async def publish(self) -> None:
        """Hand the current status to `on_status`."""
        if self._on_status is not None:
            on_status, status = self._on_status, self.snapshot()
            await _guarded(lambda: on_status(status), f"on_status({self.name!r})", STATUS_CALLBACK_TIMEOUT_S)

    async def publish_tools(self, tools: list[ToolDef]) -> None:
        """Keep the new listing and hand it to `on_tools`."""
        self.tools = tools
        self.tool_names = frozenset(tool.name for tool in tools)
        on_tools, name = self._on_tools, self.name
        await _guarded(lambda: on_tools(name, tools), f"on_tools({name!r})", TOOLS_CALLBACK_TIMEOUT_S)


async def _guarded(call: Callable[[], Awaitable[None]], what: str, timeout_s: float) -> None:
    """Await a supervisor callback; its failure is logged, never the owner's."""
    try:
        with anyio.fail_after(timeout_s):
            await call()
    except TimeoutError:
        logger.error("%s did not return within %g s; abandoned", what, timeout_s)
    except Exception:  # a callback's bug must not stop the server's owner task
        logger.exception("%s raised", what)
