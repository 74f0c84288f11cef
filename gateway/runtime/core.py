"""The running gateway behind the MCP face: the supervisor, the tool catalog and the index, wired together.

It answers the client at once: the supervisor starts the servers and the index opens in the background (see
`rt.index`); calls are routed to the tools the servers list, or the index stored, from the first second.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import anyio
import anyio.abc
import mcp_types as types

from gateway.catalog import ToolCatalog
from gateway.config import GatewayConfig
from gateway.dag.state import WorkflowState
from gateway.downstream import Supervisor
from gateway.errors import GatewayError, ServerUnavailableError
from gateway.graph.view import render_html
from gateway.models import ServerState, ServerStatus, ToolDef
from gateway.ports import Ask, Cancelled, Progress
from gateway.runstate import RunFile
from gateway.runtime import finding
from gateway.runtime.index import Index
from gateway.runtime.services import Services, Shared
from gateway.services import SearchResult
from gateway.services.backlog import Backlog
from gateway.services.capabilities import CapabilityMatch, CapabilityService, labelled_view
from gateway.services.code import CodeOutcome
from gateway.services.suggest import Suggestion
from gateway.services.telemetry import CALL_LATENCY, RESTARTS, STATE_CHANGES, Telemetry
from gateway.services.user_servers import UserServerService
from gateway.settings import Settings

logger = logging.getLogger(__name__)

ROUTE_WAIT_S = 30.0
LIST_WAIT_S = 5.0
CPU_THREADS = 2
LEARNED_WAIT_S = 2.0
"""Capabilities are read once what the workflows just finished teach is learned, waiting at most this long."""


class Runtime:
    """The running gateway behind the MCP face (implements `GatewayBackend`)."""

    def __init__(self, *, settings: Settings, config: GatewayConfig,
                 on_tools_changed: Callable[[], Coroutine[Any, Any, None]] | None = None) -> None:
        """`on_tools_changed` is told when a server's tools change (clients that list them re-list)."""
        self.catalog = ToolCatalog(servers=(s.name for s in config.servers if not s.disabled))
        self.names = self.catalog.names
        self.expose = config.expose
        self.telemetry = Telemetry()
        self.supervisor = Supervisor(servers=config.servers, on_tools=self._on_tools, on_status=self._on_status)
        self._shared = Shared(settings=settings, config=config, catalog=self.catalog, supervisor=self.supervisor,
                              telemetry=self.telemetry, backlog=Backlog(), limiter=anyio.CapacityLimiter(CPU_THREADS),
                              on_indexed=self._publish)
        self.index = Index(self._shared, on_change=self._publish)
        self._on_tools_changed = on_tools_changed
        self._runfile = RunFile(settings.data_dir)
        self._tg: anyio.abc.TaskGroup | None = None

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Start the supervisor, report started at once, then open the index; runs until cancelled."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                await tg.start(self.supervisor.run)
                self._publish()
                task_status.started()
                await self.index.keep_open()
        finally:
            self._runfile.remove()

    async def services(self) -> Services:
        return await self.index.services()

    async def search(self, query: str, *, limit: int, server: str | None, context: Sequence[str] = (),
                     include_related: bool = False, user: str | None = None) -> SearchResult:
        if (standby := self.index.standby) is not None:
            return await standby.search(query, limit=limit, server=server, context=context,
                                        include_related=include_related)
        services = await self.services()
        await services.workflows.learned(LEARNED_WAIT_S)
        return await finding.search(services, self.telemetry, query, limit=limit, server=server, context=context,
                                    include_related=include_related, user=user)

    async def suggest_capability(self, intent: str, *, user: str | None = None
                                 ) -> tuple[CapabilityMatch, list[CapabilityMatch]] | None:
        return await finding.capability_for(await self.services(), intent, user=user)

    async def suggest(self, intent: str, *, user: str | None = None) -> tuple[Suggestion, bool]:
        """A suggested DAG for `intent` (from `user`'s own and the public workflows), and whether it passes the
        adaptive suggestion threshold."""
        planner = (await self.services()).planner
        suggestion = await planner.suggest(intent, user=user)
        return suggestion, planner.above_threshold(suggestion)

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any] | None, *,
                        progress: Progress | None = None, ask: Ask | None = None) -> types.CallToolResult:
        with self.telemetry.timed(CALL_LATENCY, tool=f"{server}:{tool}", outcome="error") as labels:
            result = await self.supervisor.call_tool(server, tool, arguments, progress=progress, ask=ask)
            labels["outcome"] = "error" if result.is_error else "ok"
        return result

    async def user_server_service(self) -> UserServerService:
        return (await self.services()).user_servers

    async def own_tools(self, query: str, *, user: str, limit: int) -> list[tuple[ToolDef, float]]:
        """Nothing while the database is away: a search still answers with the shared tools."""
        services = await self.services()
        try:
            return await services.user_servers.find(user, await services.search.embed_query(query), limit=limit)
        except GatewayError as exc:
            logger.info("a user's own tools are left out of a search: %s", exc)
            return []

    async def resolve(self, name: str) -> tuple[str, str] | None:
        """Wait for the stored routes, then for the servers to settle, before calling a name unknown."""
        with anyio.move_on_after(ROUTE_WAIT_S):
            await self.index.ready.wait()
            if (route := self.names.resolve(name)) is not None:
                return route
            with contextlib.suppress(ServerUnavailableError):
                await self.supervisor.wait_settled(ROUTE_WAIT_S)
        return self.names.resolve(name)

    async def listed_tools(self) -> Mapping[str, ToolDef]:
        """Every tool by id, once the stored routes are loaded (waiting at most `LIST_WAIT_S` at start-up)."""
        with anyio.move_on_after(LIST_WAIT_S):
            await self.index.ready.wait()
        return self.catalog.known

    def listed_schemas(self) -> Mapping[str, dict[str, Any]]:
        return self.catalog.schemas

    async def execute_dag(self, document: dict[str, Any], *, owner: str | None = None,
                          progress: Progress | None = None, cancelled: Cancelled | None = None) -> WorkflowState:
        workflows = (await self.services()).workflows
        return await workflows.execute(document, owner=owner, progress=progress, cancelled=cancelled)

    async def execute_code(self, code: str, *, intent: str | None, timeout_ms: int | None,
                           owner: str | None) -> CodeOutcome:
        code_mode = (await self.services()).code
        return await code_mode.execute(code, intent=intent, timeout_ms=timeout_ms, owner=owner)

    async def control_code(self, run_id: str, action: str, *, approved: bool | None,
                           owner: str | None) -> CodeOutcome:
        code_mode = (await self.services()).code
        return await code_mode.control(run_id, action, approved=approved, owner=owner)

    async def control_workflow(
        self, workflow_id: str, action: str, *, approved: bool | None, tasks: Any, owner: str | None = None,
        progress: Progress | None = None, cancelled: Cancelled | None = None,
    ) -> WorkflowState:
        return await (await self.services()).workflows.control(
            workflow_id, action, approved=approved, tasks=tasks, owner=owner, progress=progress, cancelled=cancelled)

    async def capability_service(self) -> CapabilityService:
        """The capabilities, once what the workflows just finished teach is learned (bounded)."""
        services = await self.services()
        await services.workflows.learned(LEARNED_WAIT_S)
        return services.capabilities

    async def finish(self, timeout_s: float) -> None:
        """Before a shutdown: let what the finished workflows teach be learned (at most `timeout_s`), and say in
        the log which lessons a shutdown now cuts off. New calls are no longer read by then."""
        if self.index.open is not None and (left := await self.index.open.workflows.learned(timeout_s)):
            logger.error("shutting down before learning from %d workflows (%s): what they taught is lost",
                         len(left), ", ".join(left[:10]))

    async def graph_page(self, user: str | None = None) -> str:
        """The learned graph as a self-contained HTML page; with a `user` (HTTP), only the capabilities that user
        made or that are shared are named (another's private one shows as its id)."""
        services = await self.services()
        return render_html(await labelled_view(services.learning.graph, services.db.capabilities,
                                               self._shared.limiter, user=user))

    def metrics_text(self) -> str:
        """The gateway's metrics in Prometheus text format."""
        return self.telemetry.prometheus()

    def failure_reasons(self) -> list[str]:
        """Why the servers that failed to start (and are tried again) failed."""
        failing = (ServerState.FAILED, ServerState.STARTING)
        return [s.reason for s in self.supervisor.statuses() if s.reason and s.state in failing]

    def record_error(self, kind: str, message: str, stack: str | None) -> None:
        """Keep an error answered to a client in ``error_log`` (queued; written by the telemetry task)."""
        self.telemetry.error(kind, message, stack)

    async def _on_tools(self, server: str, tools: Sequence[ToolDef]) -> None:
        changed = self.catalog.listed(server, tools)
        if self._tg is None:
            return
        if changed and self._on_tools_changed is not None:
            self._tg.start_soon(self._on_tools_changed)
        if (services := self.index.open) is not None:
            services.tg.start_soon(services.sync, server, list(tools), self._shared)
        elif (standby := self.index.standby) is not None:
            self._tg.start_soon(standby.set_tools, list(self.catalog.known.values()))

    async def _on_status(self, status: ServerStatus) -> None:
        self._publish()
        self.telemetry.count(STATE_CHANGES, server=status.name, state=status.state.value)
        if status.state is ServerState.RESTARTING:
            self.telemetry.count(RESTARTS, server=status.name)
        self.index.record(status)

    def _publish(self) -> None:
        """Tell `pml-gateway status` what this gateway sees now (its file in the data directory)."""
        services, embedder = self.index.open, self.index.embedder
        self._runfile.write(config=self._shared.config.source, database=services.db.location if services else None,
                            index=self.index.state(), model=embedder.model_id if embedder else None,
                            servers=self.supervisor.statuses(), unindexed=self.catalog.unindexed())

