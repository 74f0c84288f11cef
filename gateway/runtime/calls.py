"""The tool calls of workflows: a downstream tool through its server, a learned capability through its own
sub-workflow; which tasks need approval; the schema each task's arguments are checked against."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Mapping
from typing import Any

from gateway.catalog import ToolCatalog
from gateway.dag import Dag, Task
from gateway.dag.executor import Executor
from gateway.dag.state import WorkflowState
from gateway.downstream import Supervisor
from gateway.downstream.outputs import to_output
from gateway.errors import ServerUnavailableError
from gateway.models import ToolOutput
from gateway.services.capability_calls import CallStore, CapabilityCalls
from gateway.services.telemetry import CALL_LATENCY, Telemetry
from gateway.services.workflows import needs_approval

SETTLE_WAIT_S = 30.0
"""A workflow sent at start-up waits this long, once, for the servers to be up before its first call."""


class DagCalls:
    """What the workflow executor calls, and what it asks of each task."""

    def __init__(self, *, supervisor: Supervisor, catalog: ToolCatalog, telemetry: Telemetry,
                 approval: frozenset[str], capabilities: CallStore) -> None:
        self._supervisor = supervisor
        self._catalog = catalog
        self._telemetry = telemetry
        self._approval = approval
        self._settled = False
        self.capabilities = CapabilityCalls(store=capabilities, schemas=lambda: catalog.schemas,
                                            run_dag=self._run_sub_dag)
        self._sub = Executor(call=self.call, checkpoint=_nothing, schema_of=self.schema_of)

    async def call(self, tool_id: str, arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
        """Run one task's tool: a known tool on its server, anything else as a learned capability."""
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

    def needs_approval(self, task: Task) -> bool:
        """A destructive or listed tool, or a capability that calls one."""
        known = self._catalog.known
        if task.tool in known or (row := self.capabilities.known(task.tool)) is None:
            return needs_approval(known.get(task.tool), self._approval)
        return any(needs_approval(known.get(t), self._approval) for t in row.tools)

    def schema_of(self, tool_id: str) -> dict[str, Any] | None:
        """A known tool's input schema, else a known capability's parameters schema."""
        if (schema := self._catalog.schemas.get(tool_id)) is not None:
            return schema
        row = self.capabilities.known(tool_id)
        return row.parameters_schema if row is not None else None

    def schemas(self) -> Mapping[str, dict[str, Any]]:
        return self._catalog.schemas

    async def _run_sub_dag(self, dag: Dag) -> WorkflowState:
        """Run a capability's DAG to its end, without checkpoints (its calling task is the unit of resumption)."""
        return await self._sub.advance(WorkflowState(workflow_id=f"cap_{uuid.uuid4().hex[:16]}", dag=dag))


async def _nothing(state: WorkflowState) -> None:
    """A capability's sub-workflow keeps no checkpoints."""
