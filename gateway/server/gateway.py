"""The MCP face of the gateway: `tools/list` and `tools/call` on the SDK's low-level server.

Handlers are thin: a meta-tool goes to its use case, a ``server__tool`` name goes straight to the downstream
server (the proxy path: no re-validation or re-serialisation of what the gateway only forwards). A failing
tool is a result with ``isError``; an unknown tool name is a protocol error.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

import anyio
import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

import gateway
from gateway.dag.state import WorkflowState
from gateway.errors import GatewayError
from gateway.models import ToolDef
from gateway.ports import Ask, Cancelled, Progress
from gateway.server import capability_tools as caps
from gateway.server import meta
from gateway.server import workflow_tools as wf
from gateway.server.names import NameTable
from gateway.server.principal import gateway_user
from gateway.server.questions import Relay
from gateway.services.search import SearchResult
from gateway.services.suggest import Suggestion

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "This gateway fronts many MCP servers. Use search_tools to find the tool for a task, then call it by the "
    "`call_as` name it returns, with arguments that match its input_schema."
)


class GatewayBackend(Protocol):
    """What the MCP face needs from the running gateway."""

    names: NameTable
    expose_all: bool

    async def search(
        self, query: str, *, limit: int, server: str | None, context: Sequence[str] = (),
        include_related: bool = False, user: str | None = None,
    ) -> SearchResult: ...

    async def suggest(self, intent: str) -> tuple[Suggestion, bool]: ...

    async def suggest_capability(self, intent: str, *, user: str | None = None) -> tuple[Any, list[Any]] | None:
        """A learned capability (`CapabilityMatch`) whose score passes the suggestion threshold, and runners-up."""
        ...

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any] | None, *,
                        progress: Progress | None = None, ask: Ask | None = None) -> types.CallToolResult: ...

    async def listed_tools(self, session: Any) -> Sequence[ToolDef]:
        """The downstream tools to expose; `session` is told when they change (``expose: all`` mode)."""
        ...

    async def execute_dag(self, document: dict[str, Any], *, owner: str | None = None,
                          progress: Progress | None = None, cancelled: Cancelled | None = None) -> WorkflowState:
        """Run a workflow, telling `progress` (when the client asked for it) of each task's end; one the client
        cancels (`cancelled()` true once the call is cancelled) ends aborted."""
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

    async def capabilities(
        self, action: str, arguments: dict[str, Any], *, user: str | None = None
    ) -> types.CallToolResult:
        """Run a cap_* meta-tool with its checked arguments, for `user` (None on stdio: every capability)."""
        ...

    async def resolve(self, name: str) -> tuple[str, str] | None:
        """``(server, tool)`` for an exposed name, waiting (bounded) while servers are still starting."""
        ...

    def record_error(self, kind: str, message: str, stack: str | None) -> None:
        """Keep an error answered to a client (`kind` is the exception's class name); must not block or raise."""
        ...


def build_server(backend: GatewayBackend, relay: Relay) -> Server[Any]:
    """The low-level MCP server wired to `backend`; `relay` carries downstream questions to 2026 clients."""
    search_tool = types.Tool(
        name=meta.SEARCH_TOOLS,
        description=meta.SEARCH_TOOLS_DESCRIPTION,
        input_schema=meta.SEARCH_TOOLS_SCHEMA,
        annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False),
    )

    workflow_tools = [
        types.Tool(name=wf.EXECUTE_DAG, description=wf.EXECUTE_DAG_DESCRIPTION, input_schema=wf.EXECUTE_DAG_SCHEMA),
        types.Tool(name=wf.WORKFLOW, description=wf.WORKFLOW_DESCRIPTION, input_schema=wf.WORKFLOW_SCHEMA),
    ]

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        tools = [search_tool, *workflow_tools, *caps.TOOLS]
        if backend.expose_all:
            tools.extend(_exposed(backend, await backend.listed_tools(ctx.session)))
        return types.ListToolsResult(tools=tools)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        if params.name == meta.SEARCH_TOOLS:
            return await _guarded(backend, _search(backend, params.arguments))
        # A client's progress token asks for progress: only then is anyone asked for it (a downstream server,
        # the workflow's tasks), and what comes back is this request's progress, under the client's token.
        progress = ctx.session.report_progress if _wants_progress(params) else None
        if params.name == wf.EXECUTE_DAG:
            return await _guarded(backend, _execute(backend, params.arguments, progress, _client_cancelled(ctx)))
        if params.name == wf.WORKFLOW:
            return await _guarded(backend, _control(backend, params.arguments, progress, _client_cancelled(ctx)))
        if params.name in (caps.CAP_LIST, caps.CAP_RENAME, caps.CAP_MERGE):
            return await _guarded(backend, _capabilities(backend, params.name, params.arguments))
        route = backend.names.resolve(params.name) or await backend.resolve(params.name)
        if route is None:
            raise MCPError(
                types.INVALID_PARAMS,
                f"unknown tool {params.name!r}: use {meta.SEARCH_TOOLS} to find tools and call them by `call_as`",
            )
        if params.request_state is not None:  # a 2026 client's answer to a question relayed before
            return await _guarded(backend, relay.resume(params.name, params.request_state, params.input_responses))

        def start(ask: Ask | None) -> Awaitable[types.CallToolResult]:
            return backend.call_tool(route[0], route[1], params.arguments, progress=progress, ask=ask)

        ask = _asker(ctx)
        if ask is None and _takes_rounds(ctx):
            return await _guarded(backend, relay.call(params.name, start))
        return await _guarded(backend, start(ask))

    return Server(
        "pml-gateway",
        version=gateway.__version__,
        instructions=INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def _search(backend: GatewayBackend, arguments: dict[str, Any] | None) -> types.CallToolResult:
    args = meta.check_arguments(meta.SEARCH_TOOLS, arguments)
    related = bool(args.get("include_related", False))
    result = await backend.search(args["query"], limit=int(args.get("limit", 5)), server=args.get("server"),
                                  context=tuple(args.get("context_tools", ())), include_related=related,
                                  user=gateway_user())
    call_as = {h.tool_id: backend.names.name_of(h.server, h.name) for h in result.hits}
    payload = meta.search_payload(result, call_as, related=related,
                                  capabilities=[caps.search_entry(m) for m in result.capabilities])
    return types.CallToolResult(
        content=[types.TextContent(text=meta.search_text(payload))], structured_content=payload
    )


async def _execute(backend: GatewayBackend, arguments: dict[str, Any] | None, progress: Progress | None,
                   cancelled: Cancelled) -> types.CallToolResult:
    document = dict(arguments or {})
    if "tasks" not in document and isinstance(document.get("intent"), str) and document["intent"].strip():
        if (found := await backend.suggest_capability(document["intent"], user=gateway_user())) is not None:
            return caps.suggestion_result(*found)
        suggestion, above = await backend.suggest(document["intent"])
        return wf.suggestion_result(suggestion, above, backend.listed_schemas())
    return wf.workflow_result(await backend.execute_dag(document, owner=gateway_user(), progress=progress,
                                                        cancelled=cancelled))


async def _control(backend: GatewayBackend, arguments: dict[str, Any] | None, progress: Progress | None,
                   cancelled: Cancelled) -> types.CallToolResult:
    args = meta.check_arguments(wf.WORKFLOW, arguments)
    state = await backend.control_workflow(
        args["workflow_id"], args["action"], approved=args.get("approved"), tasks=args.get("tasks"),
        owner=gateway_user(), progress=progress, cancelled=cancelled,
    )
    return wf.workflow_result(state)


async def _capabilities(backend: GatewayBackend, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
    return await backend.capabilities(name, meta.check_arguments(name, arguments), user=gateway_user())


_Result = TypeVar("_Result")


async def _guarded(backend: GatewayBackend, call: Awaitable[_Result]) -> _Result | types.CallToolResult:
    """Run a handler coroutine; a gateway error becomes an error result that says what to fix. Either way the
    backend records the error. A protocol error (`MCPError`) stays one."""
    try:
        return await call
    except MCPError:
        raise
    except GatewayError as exc:
        backend.record_error(type(exc).__name__, str(exc), None)
        return error_result(str(exc))
    except Exception as exc:
        logger.exception("tool call failed unexpectedly")
        backend.record_error(type(exc).__name__, str(exc), traceback.format_exc())
        return error_result("internal error in the gateway; see its log for the traceback")


def _client_cancelled(ctx: ServerRequestContext[Any]) -> Cancelled:
    """Whether the client has sent ``notifications/cancelled`` for this request (a shutdown cancels too, but
    without it). The SDK keeps that on the request's dispatch context, which `ServerRequestContext` does not
    expose: it is read through the request-scoped session, and an SDK that moved it answers False (the workflow
    then stays to be continued, as before). The e2e test of a cancelled workflow pins this."""
    event = getattr(getattr(ctx.session, "_request_outbound", None), "cancel_requested", None)
    return event.is_set if isinstance(event, anyio.Event) else lambda: False


def _asker(ctx: ServerRequestContext[Any]) -> Ask | None:
    """Where a downstream server's questions to the user go during this call: to this client, as part of this
    request, when it declared elicitation and the request can carry a request back (None otherwise)."""
    session = ctx.session
    if not _elicits(ctx) or not session.can_send_request:
        return None

    async def ask(params: types.ElicitRequestParams) -> types.ElicitResult:
        metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
        return await session.send_request(types.ElicitRequest(params=params), types.ElicitResult, metadata=metadata)

    return ask


def _takes_rounds(ctx: ServerRequestContext[Any]) -> bool:
    """Whether the client answers questions as ``input_required`` round trips: a 2026 session with elicitation."""
    return _elicits(ctx) and ctx.session.protocol_version in MODERN_PROTOCOL_VERSIONS


def _elicits(ctx: ServerRequestContext[Any]) -> bool:
    capabilities = ctx.session.client_capabilities
    return capabilities is not None and capabilities.elicitation is not None


def _wants_progress(params: types.CallToolRequestParams) -> bool:
    return params.meta is not None and params.meta.get("progress_token") is not None


def error_result(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=message)], is_error=True)


def _exposed(backend: GatewayBackend, listed: Sequence[ToolDef]) -> list[types.Tool]:
    tools = []
    for tool in listed:
        tools.append(
            types.Tool(
                name=backend.names.name_of(tool.server, tool.name),
                title=tool.title,
                description=f"[{tool.server}] {tool.description}",
                input_schema=tool.input_schema or {"type": "object"},
                output_schema=tool.output_schema,
                annotations=types.ToolAnnotations.model_validate(tool.annotations) if tool.annotations else None,
            )
        )
    return tools
