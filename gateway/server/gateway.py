"""The MCP face of the gateway: `tools/list` and `tools/call` on the SDK's low-level server.

Handlers are thin: a meta-tool goes to its use case, a ``server__tool`` name goes straight to the downstream
server (the proxy path: no re-validation or re-serialisation of what the gateway only forwards). A failing
tool is a result with ``isError``; an unknown tool name is a protocol error.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import traceback
from collections.abc import Awaitable, Sequence
from typing import Any, TypeVar

import mcp_types as types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions
from mcp.server.models import InitializationOptions
from mcp.server.subscriptions import ListenHandler
from mcp.shared.exceptions import MCPError

import gateway
from gateway.errors import DatabaseInputError, GatewayError, ServerUnavailableError
from gateway.models import ServerState, ToolDef
from gateway.server import calls, meta
from gateway.server import capability_tools as caps
from gateway.server import code_tools as code
from gateway.server import user_server_tools as mine
from gateway.server import workflow_tools as wf
from gateway.server.backend import GatewayBackend
from gateway.server.exposure import FoundTools, ListWatchers, client_of, worth_listing
from gateway.server.principal import gateway_user, sees_server_details
from gateway.server.questions import Relay
from gateway.services.search import SearchResult

logger = logging.getLogger(__name__)

WITHHELD = "failed to start (details in the gateway's log)"
"""What an HTTP user who is not an admin reads of why a server failed to start."""
_FAILING = frozenset({ServerState.FAILED, ServerState.STARTING})
"""States whose reason is a failed start's: a server retried after failing keeps the failure's reason."""


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
        types.Tool(name=code.EXECUTE_CODE, description=code.EXECUTE_CODE_DESCRIPTION,
                   input_schema=code.EXECUTE_CODE_SCHEMA),
        *caps.TOOLS,
    ]
    own_servers = types.Tool(name=mine.MY_SERVERS, description=mine.MY_SERVERS_DESCRIPTION,
                             input_schema=mine.MY_SERVERS_SCHEMA)
    found = FoundTools()

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        shown_meta = [*meta_tools, own_servers] if gateway_user() is not None else meta_tools  # HTTP users only
        if backend.expose == "search":
            return types.ListToolsResult(tools=shown_meta)
        watchers.watch(ctx)
        if backend.expose == "all":
            known = await backend.listed_tools()
            shown = [known[tool_id] for tool_id in sorted(known)]
        elif wanted := found.of(client_of(ctx)):
            known = await backend.listed_tools()
            shown = [known[tool_id] for tool_id in wanted if tool_id in known]
        else:  # a client that found nothing yet (every client at its handshake): nothing to wait for at start
            shown = []
        return types.ListToolsResult(tools=[*shown_meta, *_exposed(backend, shown)])

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        if params.name == meta.SEARCH_TOOLS:
            return await _guarded(backend, _search(backend, ctx, params.arguments, found, watchers))
        # A client's progress token asks for progress: only then is anyone asked for it (a downstream server,
        # the workflow's tasks), and what comes back is this request's progress, under the client's token.
        progress = ctx.session.report_progress if calls.wants_progress(params) else None
        if params.name == meta.CALL_TOOL:
            return await _guarded(backend, calls.call(backend, ctx, params, relay, progress))
        if params.name == wf.EXECUTE_DAG:
            ran = await _guarded(backend, wf.execute(backend, params.arguments, progress, calls.client_cancelled(ctx)))
            return _withheld(backend, ran)
        if params.name == wf.WORKFLOW:
            went = await _guarded(backend, wf.control(backend, params.arguments, progress, calls.client_cancelled(ctx)))
            return _withheld(backend, went)
        if params.name == code.EXECUTE_CODE:
            return _withheld(backend, await _guarded(backend, code.execute(backend, params.arguments)))
        if params.name == mine.MY_SERVERS:
            return await _guarded(backend, mine.act(backend, params.arguments))
        if params.name in (caps.CAP_LIST, caps.CAP_RENAME, caps.CAP_MERGE):
            return await _guarded(backend, _capabilities(backend, params.name, params.arguments))
        route = backend.names.resolve(params.name) or await backend.resolve(params.name)
        if route is None:
            raise MCPError(
                types.INVALID_PARAMS,
                f"unknown tool {params.name!r}: use {meta.SEARCH_TOOLS} to find tools and {meta.CALL_TOOL} to call "
                "them",
            )
        return await _guarded(backend, calls.proxy(backend, ctx, params, relay, route, params.arguments, progress))

    return _Server(
        "pml-gateway",
        tools_changed=backend.expose != "search",
        version=gateway.__version__,
        instructions=meta.INSTRUCTIONS_FOUND if backend.expose == "found" else meta.INSTRUCTIONS,
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


async def _search(backend: GatewayBackend, ctx: ServerRequestContext[Any], arguments: dict[str, Any] | None,
                  found: FoundTools, watchers: ListWatchers) -> types.CallToolResult:
    args = meta.check_arguments(meta.SEARCH_TOOLS, arguments)
    related = bool(args.get("include_related", False))
    result = await backend.search(args["query"], limit=int(args.get("limit", 5)), server=args.get("server"),
                                  context=tuple(args.get("context_tools", ())), include_related=related,
                                  user=gateway_user())
    result = _as_seen(result)
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
    if (user := gateway_user()) is not None and (own := await backend.own_tools(args["query"], user=user, limit=3)):
        payload["your_tools"] = [{"tool_id": t.tool_id, "description": t.description, "input_schema": t.input_schema,
                                  "semantic": round(score, 4)} for t, score in own]
        text += "\nYour own servers' tools (call them by tool_id): " + "; ".join(
            f"{t.tool_id}: {t.description[:120]}" for t, _ in own)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=payload)


def _as_seen(result: SearchResult) -> SearchResult:
    """`result` as the asker may see it: why a server failed to start is its last stderr line, which may hold what
    it should never have printed, so only those who `sees_server_details` read it; others read `WITHHELD`."""
    if sees_server_details():
        return result
    down = [dataclasses.replace(s, reason=WITHHELD) if s.reason and s.state in _FAILING else s
            for s in result.unavailable]
    return dataclasses.replace(result, unavailable=down)


def _withheld(backend: GatewayBackend, result: types.CallToolResult) -> types.CallToolResult:
    """A workflow answer as the asker may see it: a task that met a server which failed to start carries the
    failure's reason (the server's last stderr line); those who do not `sees_server_details` read where to look."""
    reasons = [] if sees_server_details() else backend.failure_reasons()
    if not reasons:
        return result
    doc = result.model_dump_json(by_alias=True, exclude_unset=True)
    for reason in sorted(reasons, key=len, reverse=True):
        doc = doc.replace(json.dumps(reason, ensure_ascii=False)[1:-1], "(details in the gateway's log)")
    return types.CallToolResult.model_validate_json(doc)


async def _capabilities(backend: GatewayBackend, name: str, arguments: dict[str, Any] | None) -> types.CallToolResult:
    checked = meta.check_arguments(name, arguments)
    return await caps.act(await backend.capability_service(), name, checked, user=gateway_user())


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
        return error_result(_worded(exc))
    except Exception as exc:
        logger.exception("tool call failed unexpectedly")
        backend.record_error(type(exc).__name__, str(exc), traceback.format_exc())
        return error_result("internal error in the gateway; see its log for the traceback")


def _worded(exc: GatewayError) -> str:
    """What the caller reads of a gateway error; a value the database refused is the request's to change, not a
    failure of the gateway to retry."""
    if isinstance(exc, DatabaseInputError):
        return (f"the database refused a value of this request ({exc}): send numbers within the bounds of the "
                "tool's input schema and text without NUL characters")
    if isinstance(exc, ServerUnavailableError) and not sees_server_details():  # its reason is the server's words
        return f"server {exc.server!r} is unavailable (details in the gateway's log)"
    return str(exc)


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
