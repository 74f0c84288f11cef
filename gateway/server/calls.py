"""Calling a downstream tool from the MCP face: the proxy path of a `server__tool` name, and `call_tool`.

A proxied call forwards the downstream result as it is (no re-validation or re-serialisation of what the gateway
only forwards). A downstream server's question to the user during the call goes to this client: as a request
during the call (handshake clients that declared elicitation), or as ``input_required`` rounds through the relay
(2026-07-28 clients).
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway.dag.arguments import argument_problems, validator
from gateway.errors import DagProblem, DagValidationError, InvalidRequestError
from gateway.models import ToolDef
from gateway.ports import Ask, Cancelled, Progress
from gateway.server import meta
from gateway.server import workflow_tools as wf
from gateway.server.backend import GatewayBackend
from gateway.server.questions import Relay


async def proxy(
    backend: GatewayBackend, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, relay: Relay,
    route: tuple[str, str], arguments: dict[str, Any] | None, progress: Progress | None,
) -> types.CallToolResult | types.InputRequiredResult:
    """The proxied call of a downstream tool: its questions go to this client during the call, or (a 2026
    client) as ``input_required`` rounds through the relay."""
    if params.request_state is not None:  # a 2026 client's answer to a question relayed before
        return await relay.resume(params.name, params.request_state, params.input_responses)

    def start(ask: Ask | None) -> Awaitable[types.CallToolResult]:
        return backend.call_tool(route[0], route[1], arguments, progress=progress, ask=ask)

    ask = _asker(ctx)
    if ask is None and _takes_rounds(ctx):
        return await relay.call(params.name, start)
    return await start(ask)


async def call(
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
            return await wf.execute(backend, {"tasks": [task]}, progress, client_cancelled(ctx))
        except DagValidationError as exc:  # said of call_tool's own fields, not of a task the client never wrote
            raise DagValidationError([_as_call_problem(p) for p in exc.problems]) from None
    tool = (await backend.listed_tools()).get(f"{route[0]}:{route[1]}")
    if tool is not None:
        _check_tool_arguments(tool, arguments)
    return await proxy(backend, ctx, params, relay, route, arguments, progress)


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


def client_cancelled(ctx: ServerRequestContext[Any]) -> Cancelled:
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


def wants_progress(params: types.CallToolRequestParams) -> bool:
    return params.meta is not None and params.meta.get("progress_token") is not None
