"""What a finished workflow teaches, learned after its client has the answer.

In order: the tool graph's edges and the tools' reliability, the intent with its workflow (for suggestion and
search), the adaptive suggestion threshold, and the capability the workflow is an instance of. Each database write
that meets an outage waits in the backlog instead of being lost. Capabilities a workflow called are named by what
does not change with the name the caller used: their graph node for the graph, their id for the capability.
"""

from __future__ import annotations

from gateway.catalog import ToolCatalog
from gateway.dag.state import WorkflowState
from gateway.db.capabilities import node_id
from gateway.services.backlog import Backlog
from gateway.services.capabilities import CapabilityService
from gateway.services.capability_calls import CapabilityCalls
from gateway.services.learning import LearningService
from gateway.services.planner import Planner
from gateway.services.telemetry import WORKFLOW_WALL, WORKFLOWS, Telemetry


class Lessons:
    """Learn from one finished workflow (the workflow service's `on_finished`)."""

    def __init__(self, *, learning: LearningService, planner: Planner, capabilities: CapabilityService,
                 calls: CapabilityCalls, catalog: ToolCatalog, backlog: Backlog, telemetry: Telemetry) -> None:
        self._learning = learning
        self._planner = planner
        self._capabilities = capabilities
        self._calls = calls
        self._catalog = catalog
        self._backlog = backlog
        self._telemetry = telemetry

    async def __call__(self, state: WorkflowState) -> None:
        self._telemetry.count(WORKFLOWS, status=state.status.value)
        self._telemetry.observe(WORKFLOW_WALL, state.wall_ms, status=state.status.value)
        learning, capabilities, backlog = self._learning, self._capabilities, self._backlog
        named = self._calls.with_stable_names(state, lambda row: node_id(row.id))
        await backlog.attempt(f"learning the graph from workflow {state.workflow_id}", lambda: learning.record(named))
        await backlog.attempt(f"remembering the intent of workflow {state.workflow_id}",
                              lambda: learning.remember(named))
        await self._planner.observe(state)  # keeps its thresholds in memory when the database is away
        as_capability = self._calls.with_stable_names(state, lambda row: str(row.id))
        known = self._catalog.known
        await backlog.attempt(f"registering workflow {state.workflow_id} as a capability",
                              lambda: capabilities.register(as_capability, known))
