"""The capability meta-tools, `cap_list`, `cap_rename` and `cap_merge`: schemas and how their answers read."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import mcp_types as types

from gateway.models import Capability
from gateway.server import meta
from gateway.services.capabilities import CapabilityMatch, CapabilityService

CAP_LIST = "cap_list"
CAP_RENAME = "cap_rename"
CAP_MERGE = "cap_merge"
MAX_OFFSET = 1_000_000
"""How far `cap_list` pages: past any real number of capabilities, well within a Postgres integer."""

CAP_LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "pattern": {"type": "string", "description": "Glob over namespace:action, e.g. 'notes:*'."},
        "unnamed_only": {"type": "boolean", "default": False, "description": "Only those never renamed by a user."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 500, "default": 50},
        "offset": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET, "default": 0},
    },
    "additionalProperties": False,
}
CAP_RENAME_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "Current namespace:action, FQDN or id."},
        "namespace": {"type": "string", "description": "^[a-z][a-z0-9]*$, at most 20 characters."},
        "action": {"type": "string", "description": "^[a-zA-Z][a-zA-Z0-9_]*$, at most 50, not exec_..."},
        "description": {"type": "string"},
        "tags": {"type": "array", "items": {"type": "string"}},
        "visibility": {"enum": ["private", "project", "org", "public"],
                       "description": "Share it (anything but private): other users of this gateway can find and "
                                      "call it; only its maker may rename or merge it."},
    },
    "required": ["name"],
    "additionalProperties": False,
}
CAP_MERGE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "source": {"type": "string", "minLength": 1, "description": "The capability folded in and deleted."},
        "target": {"type": "string", "minLength": 1, "description": "The capability that stays."},
        "prefer_source_code": {"type": "boolean", "default": False},
    },
    "required": ["source", "target"],
    "additionalProperties": False,
}

TOOLS = [
    types.Tool(name=CAP_LIST, input_schema=CAP_LIST_SCHEMA, annotations=types.ToolAnnotations(read_only_hint=True),
               description="List the capabilities learned from workflows (named, parameterised procedures)."),
    types.Tool(name=CAP_RENAME, input_schema=CAP_RENAME_SCHEMA,
               description="Give a learned capability a real name; its old name keeps working."),
    types.Tool(name=CAP_MERGE, input_schema=CAP_MERGE_SCHEMA,
               description="Merge two capabilities that use the same tools: counts add up, the source is deleted."),
]

for _tool in TOOLS:
    meta.register(_tool.name, _tool.input_schema)


def capability_json(row: Capability) -> dict[str, Any]:
    return {
        "id": str(row.id), "name": row.display_name, "fqdn": row.fqdn, "tools": list(row.tools),
        "usage_count": row.usage_count, "success_count": row.success_count,
        "success_rate": round(row.success_rate, 4), "avg_duration_ms": row.avg_duration_ms,
        "parameters_schema": row.parameters_schema, "description": row.description, "tags": list(row.tags),
        "visibility": row.visibility,
    }


def search_entry(match: CapabilityMatch) -> dict[str, Any]:
    """A capability among `search_tools` results: called as an execute_dag task."""
    row = match.row
    return {
        "kind": "capability", "tool_id": row.display_name, "server": row.namespace, "name": row.action,
        "call_as": row.display_name, "description": describe(row),
        "input_schema": row.parameters_schema or {"type": "object"}, "score": round(match.score, 4),
        "semantic": round(match.similarity, 4), "reliability": round(match.reliability, 4),
        "tools": list(row.tools), "usage_count": row.usage_count, "fqdn": row.fqdn,
    }


def describe(row: Capability) -> str:
    """The capability's description, else what it does in terms of its tools."""
    return str(row.description or f"learned workflow over {', '.join(row.tools)} (used {row.usage_count}x)")


def defaults(row: Capability) -> dict[str, Any]:
    """The observed value of each parameter: arguments that repeat the capability's last known run."""
    properties = (row.parameters_schema or {}).get("properties") or {}
    return {name: spec["default"] for name, spec in properties.items() if isinstance(spec, dict) and "default" in spec}


def suggestion_result(match: CapabilityMatch, others: Sequence[CapabilityMatch]) -> types.CallToolResult:
    """`execute_dag {intent}` answered by a learned capability: a one-task DAG calling it."""
    row = match.row
    task = {"id": "t1", "tool": row.display_name, "depends_on": [], "arguments": defaults(row),
            "input_schema": row.parameters_schema or {"type": "object"}}
    payload = {
        "suggested_dag": {"tasks": [task]}, "confidence": round(match.score, 4), "above_threshold": True,
        "warnings": [], "alternatives": [m.row.display_name for m in others],
        "capability": {**capability_json(row), "similarity": round(match.similarity, 4),
                       "reliability": round(match.reliability, 4)},
    }
    text = (f"learned capability {row.display_name} (confidence {match.score:.2f}, used {row.usage_count}x, "
            f"{row.success_rate:.0%} ok): {describe(row)}; run it as one execute_dag task with its arguments")
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=payload)


def list_result(rows: Sequence[Capability], total: int, offset: int) -> types.CallToolResult:
    items = [capability_json(r) for r in rows]
    lines = [f"{total} capabilities" + (f" (showing {offset + 1}-{offset + len(items)})" if items else "")]
    lines += [f"- {c['name']} [{', '.join(c['tools'])}] used {c['usage_count']}x, "
              f"{c['success_rate']:.0%} ok" for c in items]
    return types.CallToolResult(content=[types.TextContent(text="\n".join(lines))],
                                structured_content={"total": total, "offset": offset, "capabilities": items})


def one_result(verb: str, row: Capability) -> types.CallToolResult:
    item = capability_json(row)
    text = f"{verb} {item['name']} ({item['fqdn']}): used {item['usage_count']}x, {item['success_rate']:.0%} ok"
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=item)


async def act(service: CapabilityService, action: str, arguments: dict[str, Any],
              user: str | None) -> types.CallToolResult:
    """Run one of the capability meta-tools (`arguments` already checked against its schema) for `user`."""
    if action == CAP_LIST:
        offset = int(arguments.get("offset", 0))
        rows, total = await service.list(pattern=arguments.get("pattern"), offset=offset,
                                         unnamed_only=bool(arguments.get("unnamed_only", False)),
                                         limit=int(arguments.get("limit", 50)), user=user)
        return list_result(rows, total, offset)
    if action == CAP_RENAME:
        row = await service.rename(arguments["name"], namespace=arguments.get("namespace"),
                                   action=arguments.get("action"), description=arguments.get("description"),
                                   tags=arguments.get("tags"), visibility=arguments.get("visibility"), user=user)
        return one_result("renamed to", row)
    row = await service.merge(arguments["source"], arguments["target"], user=user,
                              prefer_source_code=bool(arguments.get("prefer_source_code", False)))
    return one_result("merged into", row)
