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
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

import gateway
from gateway.catalog.names import NameTable
from gateway.dag.arguments import argument_problems, validator
from gateway.dag.state import WorkflowState
from gateway.errors import DagProblem, DagValidationError, GatewayError, InvalidRequestError
from gateway.models import ToolDef
from gateway.ports import Ask, Cancelled, Progress
from gateway.server import capability_tools as caps
from gateway.server import meta
from gateway.server import workflow_tools as wf
from gateway.server.exposure import FoundTools, ListWatchers, client_of, worth_listing
from gateway.server.principal import gateway_user
from gateway.server.questions import Relay
from gateway.services.search import SearchResult
from gateway.services.suggest import Suggestion

logger = logging.getLogger(__name__)

INSTRUCTIONS = (
    "This gateway fronts many MCP servers; their tools are not in your tool list until you find them. "
    "1. Find: search_tools {query: what you want to do, in plain words} returns the best tools, each with a "
    "`tool_id` and its arguments. "
    "2. Call: call_tool {tool: tool_id, arguments: {...}} runs one of them and answers with its result. "
    "3. Chain: when a task takes several tool calls and one's output feeds another, send them all in one "
    "execute_dag {tasks: [{id, tool: tool_id, arguments, depends_on}]}: an argument \"$OUTPUT[id]\" (or "
    "\"$OUTPUT[id].field\") receives task id's output, independent tasks run in parallel, and steps that "
    "change things may pause for approval (continue with the workflow tool). "
    "Learned capabilities (kind \"capability\" in search results) are called the same way."
)
INSTRUCTIONS_FOUND = INSTRUCTIONS + (
    " Tools you have found also join your tool list under their `call_as` names, with their full schemas."
)


class GatewayBackend(Protocol):
    """What the MCP face needs from the running gateway."""

    names: NameTable
    expose: str
    """``found``: a client's found tools join its `tools/list`; ``all``: every tool is listed; ``search``: none."""

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

    async def listed_tools(self) -> Mapping[str, ToolDef]:
        """Every downstream tool by id, once the servers have listed them (waiting a bounded time at start-up)."""
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


def build_server(backend: GatewayBackend, relay: Relay, watchers: ListWatchers) -> Server[Any]:
    """The low-level MCP server wired to `backend`; `relay` carries downstream questions to 2026 clients, and
    `watchers` are told whose tool list changed."""
    meta_tools = [
        types.Tool(name=meta.SEARCH_TOOLS, description=meta.SEARCH_TOOLS_DESCRIPTION,
                   input_schema=meta.SEARCH_TOOLS_SCHEMA,
                   annotations=types.ToolAnnotations(read_only_hint=True, open_world_hint=False)),
        types.Tool(name=meta.CALL_TOOL, description=meta.CALL_TOOL_DESCRIPTION, input_schema=meta.CALL_TOOL_SCHEMA),
        types.Tool(name=wf.EXECUTE_DAG, description=wf.EXECUTE_DAG_DESCRIPTION, input_schema=wf.EXECUTE_DAG_SCHEMA),
        types.Tool(name=wf.WORKFLOW, description=wf.WORKFLOW_DESCRIPTION, input_schema=wf.WORKFLOW_SCHEMA),
        *caps.TOOLS,
    ]  # fmt: skip
    found = FoundTools()

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        if backend.expose == "search":
            return types.ListToolsResult(tools=meta_tools)
        watchers.watch(ctx)
        known = await backend.listed_tools()
        if backend.expose == "all":
            shown = [known[tool_id] for tool_id in sorted(known)]
        else:
            shown = [known[tool_id] for tool_id in found.of(client_of(ctx)) if tool_id in known]
        return types.ListToolsResult(tools=[*meta_tools, *_exposed(backend, shown)])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        if params.name == meta.SEARCH_TOOLS:
            return await _guarded(backend, _search(backend, ctx, params.arguments, found, watchers))
        # A client's progress token asks for progress: only then is anyone asked for it (a downstream server,
        # the workflow's tasks), and what comes back is this request's progress, under the client's token.
        progress = ctx.session.report_progress if _wants_progress(params) else None
        if params.name == meta.CALL_TOOL:
            return await _guarded(backend, _call(backend, ctx, params, relay, progress))
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
                f"unknown tool {params.name!r}: use {meta.SEARCH_TOOLS} to find tools and {meta.CALL_TOOL} to call "
                "them",
            )
        return await _proxy(backend, ctx, params, relay, route, params.arguments, progress)

    return _Server(
        "pml-gateway",
        tools_changed=backend.expose != "search",
        version=gateway.__version__,
        instructions=INSTRUCTIONS_FOUND if backend.expose == "found" else INSTRUCTIONS,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_subscriptions_listen=ListenHandler(watchers.bus),
    )


class _Server(Server[Any]):
    """The SDK's low-level server, announcing ``tools.listChanged`` to handshake clients on every transport (the
    HTTP session manager asks for its initialization options without any notification options)."""

    def __init__(self, name: str, *, tools_changed: bool, **options: Any) -> None:
        super().__init__(name, **options)
        self._tools_changed = tools_changed

    def create_initialization_options(
        self, notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        changes = notification_options or NotificationOptions(tools_changed=self._tools_changed)
        return super().create_initialization_options(changes, experimental_capabilities, extensions)


async def _proxy(
    backend: GatewayBackend, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, relay: Relay,
    route: tuple[str, str], arguments: dict[str, Any] | None, progress: Progress | None,
) -> types.CallToolResult | types.InputRequiredResult:
    """The proxied call of a downstream tool: its questions go to this client during the call, or (a 2026
    client) as ``input_required`` rounds through the relay."""
    if params.request_state is not None:  # a 2026 client's answer to a question relayed before
        return await _guarded(backend, relay.resume(params.name, params.request_state, params.input_responses))

    def start(ask: Ask | None) -> Awaitable[types.CallToolResult]:
        return backend.call_tool(route[0], route[1], arguments, progress=progress, ask=ask)

    ask = _asker(ctx)
    if ask is None and _takes_rounds(ctx):
        return await _guarded(backend, relay.call(params.name, start))
    return await _guarded(backend, start(ask))


async def _call(
    backend: GatewayBackend, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, relay: Relay,
    progress: Progress | None,
) -> types.CallToolResult | types.InputRequiredResult:
    """`call_tool`: a downstream tool (by id or `call_as` name) is proxied, its arguments checked first against
    its input schema; anything else (a learned capability) runs as a one-task workflow, which also names the
    closest known tools when the name is unknown."""
    args = meta.check_arguments(meta.CALL_TOOL, params.arguments)
    name, arguments = args["tool"], args.get("arguments", {})
    route = await _route(backend, name)
    if route is None:
        task = {"id": _CALL_TASK, "tool": name, "arguments": arguments}
        try:
            return await _execute(backend, {"tasks": [task]}, progress, _client_cancelled(ctx))
        except DagValidationError as exc:  # said of call_tool's own fields, not of a task the client never wrote
            raise DagValidationError([_as_call_problem(p) for p in exc.problems]) from None
    tool = (await backend.listed_tools()).get(f"{route[0]}:{route[1]}")
    if tool is not None:
        _check_tool_arguments(tool, arguments)
    return await _proxy(backend, ctx, params, relay, route, arguments, progress)


_CALL_TASK = "call"


def _as_call_problem(problem: DagProblem) -> DagProblem:
    message = problem.message.replace(f"task '{_CALL_TASK}'", meta.CALL_TOOL, 1)
    return DagProblem(None, problem.field, message)


async def _route(backend: GatewayBackend, name: str) -> tuple[str, str] | None:
    """``(server, tool)`` of a tool id or `call_as` name; None for anything else (a capability's name)."""
    server, colon, tool = name.partition(":")
    exposed = backend.names.name_of(server, tool) if colon else name
    route = backend.names.resolve(exposed) or await backend.resolve(exposed)
    if route is None or (colon and route != (server, tool)):
        return None
    return route


def _check_tool_arguments(tool: ToolDef, arguments: dict[str, Any]) -> None:
    problems = argument_problems(None, f"{meta.CALL_TOOL} {tool.tool_id}", arguments, validator(tool.input_schema),
                                 resolved=True)
    if problems:
        raise InvalidRequestError("; ".join(p.message for p in problems), field=problems[0].field)


async def _search(backend: GatewayBackend, ctx: ServerRequestContext[Any], arguments: dict[str, Any] | None,
                  found: FoundTools, watchers: ListWatchers) -> types.CallToolResult:
    args = meta.check_arguments(meta.SEARCH_TOOLS, arguments)
    related = bool(args.get("include_related", False))
    result = await backend.search(args["query"], limit=int(args.get("limit", 5)), server=args.get("server"),
                                  context=tuple(args.get("context_tools", ())), include_related=related,
                                  user=gateway_user())
    call_as = {h.tool_id: backend.names.name_of(h.server, h.name) for h in result.hits}
    payload = meta.search_payload(result, call_as, related=related,
                                  capabilities=[caps.search_entry(m) for m in result.capabilities])
    listed: list[str] = []
    if backend.expose == "found":
        listed = worth_listing([(h.tool_id, h.score) for h in result.hits])
        if found.add(client_of(ctx), listed):
            await watchers.tell(ctx)  # before the answer: the client lists again while the model reads it
    elif backend.expose == "all":
        listed = [h.tool_id for h in result.hits]
    text = meta.search_text(payload, listed=[call_as[tool_id] for tool_id in listed])
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=payload)


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
