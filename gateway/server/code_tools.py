"""`execute_code`: its schema, the few lines that teach a model to write code against the tools, its answer."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from gateway.errors import CodeLimitError
from gateway.server import meta
from gateway.server.backend import GatewayBackend
from gateway.server.principal import gateway_user
from gateway.services.code import CodeOutcome

EXECUTE_CODE = "execute_code"
MAX_TIMEOUT_MS = 600_000

EXECUTE_CODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "code": {"type": "string", "minLength": 1, "maxLength": 100_000,
                 "description": "Python (top-level await allowed); the value of its last expression is returned."},
        "intent": {"type": "string", "maxLength": 2000,
                   "description": "What the code is for, in plain words (helps the gateway learn it)."},
        "timeout_ms": {"type": "integer", "minimum": 1, "maximum": MAX_TIMEOUT_MS,
                       "description": "Wall-time limit, tool calls included (at most the gateway's own limit)."},
    },
    "required": ["code"],
    "additionalProperties": False,
}

EXECUTE_CODE_DESCRIPTION = (
    "Run Python next to the tools and get back only what you need: filter, join and summarise large tool "
    "results here instead of reading them. In the code: `await call(tool_id, {args})` calls any tool found with "
    "search_tools (or a learned capability by name) and returns its result (parsed JSON when it is JSON, else "
    "text; a failure raises RuntimeError); `await search_tools(query, limit)` finds tools "
    "([{tool_id, description, input_schema}]); `asyncio.gather(...)` runs calls concurrently. The last expression "
    "is the answer; print() output is returned too. A sandboxed subset of Python: no files, network, environment "
    "or imports beyond asyncio, json, re, math, datetime and a few others; time, memory, output and call count "
    "are limited; a tool that needs approval pauses the run (continue it with the workflow tool). "
    "Example: log = await call('git:git_log', {'repo_path': '.', 'max_count': 200}) then "
    "[l for l in log.splitlines() if 'fix' in l][:10]. Typed: `import tools` then "
    "`await tools.git__git_log(repo_path='.')` (server__tool, keyword arguments; checked against the tool's schema)."
)

meta.register(EXECUTE_CODE, EXECUTE_CODE_SCHEMA)


async def execute(backend: GatewayBackend, arguments: dict[str, Any] | None) -> types.CallToolResult:
    args = meta.check_arguments(EXECUTE_CODE, arguments)
    outcome = await backend.execute_code(args["code"], intent=args.get("intent"), timeout_ms=args.get("timeout_ms"),
                                         owner=gateway_user())
    return code_result(outcome)


async def control(backend: GatewayBackend, args: dict[str, Any]) -> types.CallToolResult:
    """`workflow` on a code run (its id starts with ``code_``): continue with a decision, abort, or status."""
    outcome = await backend.control_code(args["workflow_id"], args["action"], approved=args.get("approved"),
                                         owner=gateway_user())
    return code_result(outcome)


def code_result(outcome: CodeOutcome) -> types.CallToolResult:
    """The value (and what was printed) as text and as structured content; a failure names its kind, or the limit
    it hit, with the calls made before it; a run waiting for approval says how to decide."""
    calls = [{"tool": inv.tool, "ok": inv.ok, "ms": round(inv.duration_ms, 1)} for inv in outcome.invocations]
    payload: dict[str, Any] = {"run_id": outcome.run_id, "status": outcome.status, "calls": len(outcome.invocations)}
    if outcome.pending is not None or outcome.running:
        return _waiting(outcome, payload)
    if outcome.error is not None:
        payload["error"] = {"kind": outcome.error.kind, "message": str(outcome.error)}
        if isinstance(outcome.error, CodeLimitError):
            payload["error"]["limit"] = outcome.error.limit
        payload["tool_calls"] = calls
        if outcome.printed:
            payload["printed"] = outcome.printed
        text = f"the code failed ({outcome.error.kind}): {outcome.error}"
        if outcome.typing:
            payload["type_check"] = outcome.typing
            text += f"\nthe type checker had found, against the tools' stubs:\n{outcome.typing}"
        if outcome.printed:
            text += f"\nprinted before it failed:\n{outcome.printed}"
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=payload, is_error=True)
    payload["result"] = outcome.value
    if outcome.printed:
        payload["printed"] = outcome.printed
    if outcome.typing:
        payload["type_check"] = outcome.typing
    text = outcome.value if isinstance(outcome.value, str) else json.dumps(outcome.value, ensure_ascii=False)
    if outcome.printed:
        text = f"{outcome.printed.rstrip()}\n{text}" if outcome.value is not None else outcome.printed
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=payload)


def _waiting(outcome: CodeOutcome, payload: dict[str, Any]) -> types.CallToolResult:
    if outcome.pending is None:
        text = f"code run {outcome.run_id} is running"
        return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=payload)
    tool, arguments = outcome.pending
    payload["pending"] = {"tool": tool, "arguments": arguments}
    text = (f"approval required for {tool} {json.dumps(arguments, ensure_ascii=False)}: the code waits. Call "
            f'workflow with {{"workflow_id": "{outcome.run_id}", "action": "continue", "approved": true}} (or '
            "false to refuse the call: the code then gets a PermissionError)")
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=payload)
