"""The workflow meta-tools, `execute_dag` and `workflow`: schemas and how their answers read."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mcp_types as types

from gateway.dag import as_text
from gateway.dag.state import RunStatus, TaskStatus, WorkflowState
from gateway.ports import Cancelled, Progress
from gateway.server import capability_tools as caps
from gateway.server import code_tools, meta
from gateway.server.backend import GatewayBackend
from gateway.server.principal import gateway_user
from gateway.services.code import RUN_PREFIX
from gateway.services.suggest import Suggestion
from gateway.services.workflows import ACTIONS, summary

EXECUTE_DAG = "execute_dag"
WORKFLOW = "workflow"

_TASK = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "Unique task id: letters, digits, _ and -."},
        "tool": {"type": "string", "description": "A `server:tool` id, as search_tools returns it."},
        "arguments": {"type": "object", "description": 'Tool arguments; "$OUTPUT[task_id].path" uses an output.'},
        "depends_on": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["id", "tool"],
}

EXECUTE_DAG_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tasks": {"type": "array", "items": _TASK, "minItems": 1, "maxItems": 200},
        "intent": {"type": "string", "description": "What the workflow is for (kept with its record)."},
        "options": {
            "type": "object",
            "properties": {
                "max_concurrency": {"type": "integer", "minimum": 1, "maximum": 64, "default": 8},
                "timeout_ms": {"type": "integer", "minimum": 1, "maximum": 600000, "default": 30000},
                "per_layer_validation": {"type": "boolean", "default": False},
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

EXECUTE_DAG_DESCRIPTION = (
    "Run a workflow of tool calls: tasks whose dependencies are done run in parallel layers; a string argument "
    '"$OUTPUT[task_id]" or "$OUTPUT[task_id].path[0]" receives an earlier output (and implies the dependency). '
    "The whole DAG is validated before anything runs. A one-task DAG is the plain way to call one tool. "
    "Destructive steps pause for approval; continue them with the `workflow` tool. With only an `intent` "
    "(no tasks) nothing runs: the answer is a suggested DAG learned from past workflows, with a confidence."
)

WORKFLOW_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "workflow_id": {"type": "string", "minLength": 1},
        "action": {"type": "string", "enum": list(ACTIONS)},
        "approved": {"type": "boolean", "description": "For a workflow waiting for approval: run or skip."},
        "tasks": {"type": "array", "items": _TASK, "description": "replan: tasks to add or replace."},
    },
    "required": ["workflow_id", "action"],
    "additionalProperties": False,
}

WORKFLOW_DESCRIPTION = (
    "Control a paused or running workflow by its workflow_id: continue (with approved: true/false when it "
    "waits for approval), abort, replan (add or replace tasks not yet run), or status. A paused execute_code "
    "run (workflow_id code_...) takes continue, abort and status."
)


def workflow_result(state: WorkflowState) -> types.CallToolResult:
    """Structured summary plus a short text; a plain single call answers with the tool's own output."""
    payload = summary(state)
    failed = state.status is RunStatus.FAILED
    if len(state.dag.tasks) == 1 and state.status.final:
        (result,) = state.results.values()
        text = result.error if result.status is not TaskStatus.OK else as_text(result.output)
        return types.CallToolResult(content=[types.TextContent(text=text or "")], structured_content=payload,
                                    is_error=result.status is not TaskStatus.OK)
    return types.CallToolResult(content=[types.TextContent(text=_summary_text(state, payload))],
                                structured_content=payload, is_error=failed)


def _summary_text(state: WorkflowState, payload: dict[str, Any]) -> str:
    ok = sum(1 for r in state.results.values() if r.status is TaskStatus.OK)
    lines = [
        f"workflow {state.workflow_id} {state.status.value}: {ok}/{len(state.dag.tasks)} tasks ok, "
        f"{payload['layers']} layers, {payload['wall_ms']:.0f} ms (speedup {payload['speedup']}x)"
    ]
    for task_id, task in payload["tasks"].items():
        detail = task["error"] if task["error"] else as_text(task["output"])[:120]
        lines.append(f"- {task_id} [{task['status']}, {task['duration_ms']:.0f} ms] {detail}")
    if state.status is RunStatus.APPROVAL_REQUIRED:
        lines.append(f"approval required for {', '.join(state.pending_approval)}: call workflow with "
                     f'{{"workflow_id": "{state.workflow_id}", "action": "continue", "approved": true}} (or false)')
    elif state.status is RunStatus.LAYER_COMPLETE:
        lines.append(f'layer {state.next_layer - 1} done: call workflow with {{"workflow_id": '
                     f'"{state.workflow_id}", "action": "continue"}} to go on')
    return "\n".join(lines)


meta.register(EXECUTE_DAG, EXECUTE_DAG_SCHEMA)
meta.register(WORKFLOW, WORKFLOW_SCHEMA)


def suggestion_result(
    suggestion: Suggestion, above_threshold: bool, schemas: Mapping[str, dict[str, Any]]
) -> types.CallToolResult:
    """A suggested DAG (ready to send back as `tasks` once its arguments are filled), or why there is none."""
    ids = {tool: f"t{i}" for i, tool in enumerate(suggestion.tools, 1)}
    tasks = [{"id": ids[tool], "tool": tool, "depends_on": [ids[a] for a, b in suggestion.edges if b == tool],
              "input_schema": schemas.get(tool, {"type": "object"})} for tool in suggestion.tools]
    payload: dict[str, Any] = {
        "suggested_dag": {"tasks": tasks} if suggestion.confident else None,
        "confidence": suggestion.confidence, "above_threshold": above_threshold and suggestion.confident,
        "warnings": suggestion.warnings, "alternatives": suggestion.alternatives,
    }
    if not suggestion.confident:
        payload["candidates"] = suggestion.tools + suggestion.alternatives
        text = (f"no confident suggestion (confidence {suggestion.confidence:.2f}); best candidates: "
                f"{', '.join(payload['candidates'][:5]) or 'none'}")
    else:
        steps = " -> ".join(f"{t['id']}={t['tool']}" for t in tasks)
        text = f"suggested workflow (confidence {suggestion.confidence:.2f}): {steps}"
        if suggestion.edges:
            text += "; edges: " + ", ".join(f"{ids[a]}->{ids[b]}" for a, b in suggestion.edges)
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=payload)


async def execute(backend: GatewayBackend, arguments: dict[str, Any] | None, progress: Progress | None,
                  cancelled: Cancelled) -> types.CallToolResult:
    """`execute_dag`: run the tasks; with only an intent, suggest a workflow (a learned capability first). Only
    the strings are checked here (no NUL): the DAG parser reports every other problem at once."""
    meta.check_strings(EXECUTE_DAG, arguments)
    document = dict(arguments or {})
    if "tasks" not in document and isinstance(document.get("intent"), str) and document["intent"].strip():
        if (found := await backend.suggest_capability(document["intent"], user=gateway_user())) is not None:
            return caps.suggestion_result(*found)
        suggestion, above = await backend.suggest(document["intent"], user=gateway_user())
        return suggestion_result(suggestion, above, backend.listed_schemas())
    return workflow_result(await backend.execute_dag(document, owner=gateway_user(), progress=progress,
                                                     cancelled=cancelled))


async def control(backend: GatewayBackend, arguments: dict[str, Any] | None, progress: Progress | None,
                  cancelled: Cancelled) -> types.CallToolResult:
    """`workflow`: continue, abort, replan or report a workflow of this user."""
    args = meta.check_arguments(WORKFLOW, arguments)
    if args["workflow_id"].startswith(RUN_PREFIX):
        return await code_tools.control(backend, args)
    state = await backend.control_workflow(
        args["workflow_id"], args["action"], approved=args.get("approved"), tasks=args.get("tasks"),
        owner=gateway_user(), progress=progress, cancelled=cancelled,
    )
    return workflow_result(state)
