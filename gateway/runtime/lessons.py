"""What a finished workflow teaches, learned after its client has the answer.

In order: the tool graph's edges and the tools' reliability, the intent with its workflow (for suggestion and
search), the adaptive suggestion threshold, and the capability the workflow is an instance of. Each database write
that meets an outage waits in the backlog instead of being lost. Capabilities a workflow called are named by what
does not change with the name the caller used: their graph node for the graph, their id for the capability.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.capabilities.code import NormalCode
from gateway.catalog import ToolCatalog
from gateway.dag.state import RunStatus, WorkflowState
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
                 calls: CapabilityCalls, catalog: ToolCatalog, backlog: Backlog, telemetry: Telemetry,
                 successes: Callable[[str, str | None, str], Awaitable[int]]) -> None:
        """`successes(code_hash, owner, run_id)`: how many runs of a program's normal form succeeded, up to the run
        `run_id` (included)."""
        self._learning = learning
        self._planner = planner
        self._capabilities = capabilities
        self._calls = calls
        self._catalog = catalog
        self._backlog = backlog
        self._telemetry = telemetry
        self._successes = successes

    async def __call__(self, state: WorkflowState) -> None:
        await self._common(state)
        as_capability = self._calls.with_stable_names(state, lambda row: str(row.id))
        known, capabilities = self._catalog.known, self._capabilities
        await self._backlog.attempt(f"registering workflow {state.workflow_id} as a capability",
                                    lambda: capabilities.register(as_capability, known))

    async def code(self, state: WorkflowState, normal: NormalCode | None) -> None:
        """What a code run teaches: the same as a workflow's (its trace is one), and, for a program that ran well
        (`normal`: its normal form) often enough, a capability that runs it."""
        await self._common(state)
        if normal is None or state.status is not RunStatus.COMPLETED:
            return
        successes = await self._successes(normal.hash, state.owner, state.workflow_id)
        as_capability = self._calls.with_stable_names(state, lambda row: str(row.id))
        known, capabilities = self._catalog.known, self._capabilities
        await self._backlog.attempt(f"registering the program of {state.workflow_id} as a capability",
                                    lambda: capabilities.register_code(as_capability, normal, successes, known))

    async def _common(self, state: WorkflowState) -> None:
        self._telemetry.count(WORKFLOWS, status=state.status.value)
        self._telemetry.observe(WORKFLOW_WALL, state.wall_ms, status=state.status.value)
        learning, backlog = self._learning, self._backlog
        named = self._calls.with_stable_names(state, lambda row: node_id(row.id))
        await backlog.attempt(f"learning the graph from workflow {state.workflow_id}", lambda: learning.record(named))
        await backlog.attempt(f"remembering the intent of workflow {state.workflow_id}",
                              lambda: learning.remember(named))
        await self._planner.observe(state)  # keeps its thresholds in memory when the database is away
