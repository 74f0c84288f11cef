"""The tool calls of workflows: a downstream tool through its server, a learned capability through its own
sub-workflow; which tasks need approval; the schema each task's arguments are checked against."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.catalog import ToolCatalog
from gateway.dag import Dag, Task
from gateway.dag.executor import Executor
from gateway.dag.state import WorkflowState
from gateway.downstream import Supervisor
from gateway.downstream.outputs import to_output
from gateway.downstream.user_servers import UserServers
from gateway.errors import ServerUnavailableError, UnknownToolError
from gateway.models import ToolDef, ToolOutput
from gateway.services.capability_calls import CallStore, CapabilityCalls, acting_user
from gateway.services.telemetry import CALL_LATENCY, Telemetry
from gateway.services.user_servers import split_tool_id
from gateway.services.workflows import needs_approval

SETTLE_WAIT_S = 30.0
"""A workflow sent at start-up waits this long, once, for the servers to be up before its first call."""


class DagCalls:
    """What the workflow executor calls, and what it asks of each task."""

    def __init__(self, *, supervisor: Supervisor, catalog: ToolCatalog, telemetry: Telemetry,
                 approval: frozenset[str], capabilities: CallStore, user_servers: UserServers | None = None) -> None:
        self._supervisor = supervisor
        self._user_servers = user_servers
        self._catalog = catalog
        self._telemetry = telemetry
        self._approval = approval
        self._settled = False
        self.capabilities = CapabilityCalls(store=capabilities, schemas=lambda: catalog.schemas,
                                            run_dag=self._run_sub_dag)
        self._sub = Executor(call=self.call, checkpoint=_nothing, schema_of=self.schema_of)

    async def call(self, tool_id: str, arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
        """Run one task's tool: a known tool on its server, a user's tool (``@server:tool``) on that user's
        instance, anything else as a learned capability."""
        if (own := split_tool_id(tool_id)) is not None:
            return await self._call_own(own, arguments, timeout_s)
        if tool_id not in self._catalog.known:
            return await self.capabilities.call(tool_id, arguments, timeout_s)
        server, _, tool = tool_id.partition(":")
        if not self._settled:  # a DAG sent at start-up waits for its servers first, once
            with contextlib.suppress(ServerUnavailableError):
                await self._supervisor.wait_settled(SETTLE_WAIT_S)
                self._settled = True
        with self._telemetry.timed(CALL_LATENCY, tool=tool_id, outcome="error") as labels:
            output = to_output(await self._supervisor.call_tool(server, tool, arguments, timeout_s=timeout_s))
            labels["outcome"] = "error" if output.is_error else "ok"
        return output

    async def _call_own(self, route: tuple[str, str], arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
        user = acting_user.get()
        if user is None or self._user_servers is None:
            return ToolOutput(is_error=True, text=f"@{route[0]}:{route[1]}: a user's own servers are reached over "
                              "HTTP by that user only")
        tool_id = f"@{route[0]}:{route[1]}"
        with self._telemetry.timed(CALL_LATENCY, tool=tool_id, outcome="error") as labels:
            result = await self._user_servers.call_tool(user, route[0], route[1], arguments, timeout_s=timeout_s)
            output = to_output(result)
            labels["outcome"] = "error" if output.is_error else "ok"
        return output

    def own_tools(self) -> dict[str, ToolDef]:
        """The acting user's tools of their running servers, by id (``@server:tool``)."""
        user = acting_user.get()
        if user is None or self._user_servers is None:
            return {}
        return {f"@{server}:{t.name}": t for server, tools in self._user_servers.running(user).items() for t in tools}

    async def schemas_for(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Schemas of names the catalog does not know: the acting user's tools (their servers started for it),
        then learned capabilities."""
        names = list(names)
        found: dict[str, dict[str, Any]] = {}
        user = acting_user.get()
        for server in {route[0] for n in names if (route := split_tool_id(n)) is not None}:
            if user is not None and self._user_servers is not None:
                with contextlib.suppress(UnknownToolError):  # no such server: the DAG's validation names the tool
                    await self._user_servers.ensure(user, server)
        own = self.own_tools()
        found.update({n: own[n].input_schema or {"type": "object"} for n in names if n in own})
        found.update(await self.capabilities.schemas_for([n for n in names if split_tool_id(n) is None]))
        return found

    def needs_approval(self, task: Task) -> bool:
        """A destructive or listed tool, or a capability that calls one."""
        if split_tool_id(task.tool) is not None:
            return needs_approval(self.own_tools().get(task.tool), self._approval)
        known = self._catalog.known
        if task.tool in known or (row := self.capabilities.known(task.tool)) is None:
            return needs_approval(known.get(task.tool), self._approval)
        return any(needs_approval(known.get(t), self._approval) for t in row.tools)

    def schema_of(self, tool_id: str) -> dict[str, Any] | None:
        """A known tool's input schema (the acting user's own included), else a known capability's parameters
        schema."""
        if (schema := self._catalog.schemas.get(tool_id)) is not None:
            return schema
        if split_tool_id(tool_id) is not None:
            own = self.own_tools().get(tool_id)
            return own.input_schema if own is not None else None
        row = self.capabilities.known(tool_id)
        return row.parameters_schema if row is not None else None

    def schemas(self) -> Mapping[str, dict[str, Any]]:
        return self._catalog.schemas

    async def _run_sub_dag(self, dag: Dag) -> WorkflowState:
        """Run a capability's DAG to its end, without checkpoints (its calling task is the unit of resumption)."""
        return await self._sub.advance(WorkflowState(workflow_id=f"cap_{uuid.uuid4().hex[:16]}", dag=dag))


async def _nothing(state: WorkflowState) -> None:
    """A capability's sub-workflow keeps no checkpoints."""
