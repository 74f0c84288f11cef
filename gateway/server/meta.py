"""The meta-tools the client sees: their schemas, their argument checks, and how results are rendered.

Arguments are checked against the very schema published in `tools/list` (JSON Schema, draft 2020-12), so the
error a client gets names the field and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from gateway.errors import InvalidRequestError
from gateway.services.search import MAX_LIMIT, SearchResult

SEARCH_TOOLS = "search_tools"

SEARCH_TOOLS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {
            "type": "string",
            "minLength": 1,
            "description": "What you want to do, in plain language (e.g. 'what time is it in Tokyo').",
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": 5},
        "server": {"type": "string", "description": "Only tools of this downstream server."},
        "context_tools": {
            "type": "array", "items": {"type": "string"}, "maxItems": 20,
            "description": "Tool ids already used in this task: tools often used with them rank higher.",
        },
        "include_related": {
            "type": "boolean", "default": False,
            "description": "Add each result's graph neighbours (often used before / after it).",
        },
    },
    "required": ["query"],
    "additionalProperties": False,
}

SEARCH_TOOLS_DESCRIPTION = (
    "Find the tools of all connected MCP servers that fit a task. Returns the best matches with their "
    "input schemas. Call a found tool right away by its `call_as` name (server__tool) with its arguments."
)

_SCHEMAS: dict[str, dict[str, Any]] = {SEARCH_TOOLS: SEARCH_TOOLS_SCHEMA}
_VALIDATORS: dict[str, Draft202012Validator] = {}


def register(tool: str, schema: dict[str, Any]) -> None:
    """Check the arguments of meta-tool `tool` against `schema` from now on."""
    _SCHEMAS[tool] = schema
    _VALIDATORS[tool] = Draft202012Validator(schema)


register(SEARCH_TOOLS, SEARCH_TOOLS_SCHEMA)


def check_arguments(tool: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments as a dict, or `InvalidRequestError` naming the first field that does not fit."""
    args = dict(arguments or {})
    error = next(iter(sorted(_VALIDATORS[tool].iter_errors(args), key=lambda e: list(e.path))), None)
    if error is not None:
        raise InvalidRequestError(_describe(tool, error), field=_field(error))
    return args


def _field(error: ValidationError) -> str:
    if error.path:
        return ".".join(str(p) for p in error.path)
    if error.validator == "required":
        return str(error.message.split("'")[1])
    if error.validator == "additionalProperties":
        return str(error.message.split("'")[1])
    return "arguments"


def _describe(tool: str, error: ValidationError) -> str:
    field = _field(error)
    if error.validator == "required":
        return f"{tool}: missing required argument '{field}'"
    if error.validator == "additionalProperties":
        allowed = ", ".join(_SCHEMAS[tool]["properties"])
        return f"{tool}: unknown argument '{field}' (expected: {allowed})"
    return f"{tool}: argument '{field}': {error.message}"


def search_payload(
    result: SearchResult, call_as: Mapping[str, str], *, related: bool = False,
    capabilities: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:  # fmt: skip
    """The structured content of a `search_tools` answer: tools and capabilities (`kind`), best score first."""
    tools = [
        {
            "kind": "tool",
            "tool_id": h.tool_id,
            "server": h.server,
            "name": h.name,
            **({"title": h.title} if h.title else {}),
            "call_as": call_as.get(h.tool_id, h.tool_id),
            "description": h.description,
            "input_schema": h.input_schema,
            "score": round(h.score, 4),
            "semantic": round(h.semantic, 4),
            **({"related": {"before": list(h.before), "after": list(h.after)}} if related else {}),
        }
        for h in result.hits
    ]
    return {
        "query": result.query,
        "results": sorted([*tools, *capabilities], key=lambda r: -r["score"]),
        "unavailable_servers": [
            {"server": s.name, "state": s.state.value, "reason": s.reason} for s in result.unavailable
        ],
        **({"warnings": [result.degraded]} if result.degraded else {}),
    }


def search_text(payload: Mapping[str, Any]) -> str:
    """A compact text rendering: one line per tool with its arguments, then the servers that are down."""
    lines = [f"{len(payload['results'])} results for: {payload['query']}"]
    for i, hit in enumerate(payload["results"], 1):
        props = hit["input_schema"].get("properties", {}) if isinstance(hit["input_schema"], dict) else {}
        required = set(hit["input_schema"].get("required", [])) if isinstance(hit["input_schema"], dict) else set()
        args = ", ".join(f"{k}{'' if k in required else '?'}" for k in props)
        kind = "capability (an execute_dag task) " if hit["kind"] == "capability" else ""
        lines.append(f"{i}. {kind}{hit['call_as']}({args})  [{hit['score']:.2f}] {hit['description'][:160]}")
    lines += [f"! {warning}" for warning in payload.get("warnings", [])]
    for down in payload["unavailable_servers"]:
        lines.append(f"! server {down['server']} is {down['state']}: {down['reason'] or 'no reason given'}")
    return "\n".join(lines)


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
