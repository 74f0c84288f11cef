"""What the MCP face needs from the running gateway: the `GatewayBackend` protocol the runtime implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import mcp_types as types

from gateway.catalog import NameTable
from gateway.dag.state import WorkflowState
from gateway.models import ToolDef
from gateway.ports import Ask, Cancelled, Progress
from gateway.services.capabilities import CapabilityMatch, CapabilityService
from gateway.services.code import CodeOutcome
from gateway.services.search import SearchResult
from gateway.services.suggest import Suggestion
from gateway.services.user_servers import UserServerService


class GatewayBackend(Protocol):
    """What the MCP face needs from the running gateway."""

    names: NameTable
    expose: str
    """``found``: a client's found tools join its `tools/list`; ``all``: every tool is listed; ``search``: none."""

    async def search(
        self, query: str, *, limit: int, server: str | None, context: Sequence[str] = (),
        include_related: bool = False, user: str | None = None,
    ) -> SearchResult: ...

    async def suggest(self, intent: str, *, user: str | None = None) -> tuple[Suggestion, bool]:
        """A suggested DAG learnt from `user`'s own and the public workflows, and whether it passes the threshold."""
        ...

    async def suggest_capability(
        self, intent: str, *, user: str | None = None
    ) -> tuple[CapabilityMatch, list[CapabilityMatch]] | None:
        """A learned capability (`CapabilityMatch`) whose score passes the suggestion threshold, and runners-up."""
        ...

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any] | None, *,
                        progress: Progress | None = None, ask: Ask | None = None) -> types.CallToolResult: ...

    async def listed_tools(self) -> Mapping[str, ToolDef]:
        """Every downstream tool by id, once the servers have listed them (waiting a bounded time at start-up)."""
        ...

    async def execute_dag(self, document: dict[str, Any], *, owner: str | None = None,
                          progress: Progress | None = None, cancelled: Cancelled | None = None) -> WorkflowState:
        """Run a workflow, telling `progress` (when the client asked for it) of each task's end; one the client
        cancels (`cancelled()` true once the call is cancelled) ends aborted."""
        ...

    async def execute_code(self, code: str, *, intent: str | None, timeout_ms: int | None,
                           owner: str | None) -> CodeOutcome:
        """Run a program in the sandbox against the tools, for `owner` (the HTTP user; None on stdio)."""
        ...

    async def control_code(self, run_id: str, action: str, *, approved: bool | None,
                           owner: str | None) -> CodeOutcome:
        """Continue (with a decision), abort or report a code run of `owner`'s that waits for approval."""
        ...

    async def control_workflow(
        self, workflow_id: str, action: str, *, approved: bool | None, tasks: Any, owner: str | None = None,
        progress: Progress | None = None, cancelled: Cancelled | None = None,
    ) -> WorkflowState:
        """`owner` (the HTTP user; None on stdio) must be the one who started the workflow."""
        ...

    def listed_schemas(self) -> Mapping[str, dict[str, Any]]:
        """Input schema by tool id, for suggested tasks."""
        ...

    async def capability_service(self) -> CapabilityService:
        """The learned capabilities, once what the workflows just finished teach is learned."""
        ...

    async def user_server_service(self) -> UserServerService:
        """HTTP users' own servers."""
        ...

    async def own_tools(self, query: str, *, user: str, limit: int) -> list[tuple[ToolDef, float]]:
        """`user`'s own tools closest in meaning to `query` (from what their servers last listed)."""
        ...

    async def resolve(self, name: str) -> tuple[str, str] | None:
        """``(server, tool)`` for an exposed name, waiting (bounded) while servers are still starting."""
        ...

    def failure_reasons(self) -> list[str]:
        """Why the servers that failed to start failed (their last stderr line, mostly): for admins only."""
        ...

    def record_error(self, kind: str, message: str, stack: str | None) -> None:
        """Keep an error answered to a client (`kind` is the exception's class name); must not block or raise."""
        ...
