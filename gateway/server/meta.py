"""The meta-tools the client sees: their schemas, their argument checks, and how results are rendered.

Arguments are checked against the very schema published in `tools/list` (JSON Schema, draft 2020-12), so the
error a client gets names the field and what was expected. A string the schema declares must also hold no NUL
(U+0000): these strings are stored in or matched against Postgres text, which cannot hold one; nor a lone
surrogate (U+D800 to U+DFFF, which JSON's ``\ud800`` escape can carry), which no text encoding can. Free-form tool
`arguments` (``type: object``, no declared properties) are not looked into: they go to the downstream tool.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, validators
from jsonschema.exceptions import ValidationError
from jsonschema.protocols import Validator

from gateway.errors import InvalidRequestError
from gateway.services.search import MAX_LIMIT, SearchResult

SEARCH_TOOLS = "search_tools"

INSTRUCTIONS = (
    "This gateway fronts many MCP servers; their tools are not in your tool list until you find them. "
    "1. Find: search_tools {query: what you want to do, in plain words} returns the best tools, each with a "
    "`tool_id` and its arguments. "
    "2. Call: call_tool {tool: tool_id, arguments: {...}} runs one of them and answers with its result. "
    "3. Chain: when a task takes several tool calls and one's output feeds another, send them all in one "
    "execute_dag {tasks: [{id, tool: tool_id, arguments, depends_on}]}: an argument \"$OUTPUT[id]\" (or "
    "\"$OUTPUT[id].field\") receives task id's output, independent tasks run in parallel, and steps that "
    "change things may pause for approval (continue with the workflow tool). "
    "4. Compute: when tool results are large or need filtering, execute_code {code} runs Python next to the tools "
    "(`await call(tool_id, {args})` inside) and returns only what the code returns. "
    "Learned capabilities (kind \"capability\" in search results) are called the same way."
)
INSTRUCTIONS_FOUND = INSTRUCTIONS + (
    " Tools you have found also join your tool list under their `call_as` names, with their full schemas."
)

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
    "Find the tools of all connected MCP servers that fit a task, in plain language. The tools themselves are not "
    "in your tool list until found. Returns the best matches with their `tool_id` and `input_schema`; call one with "
    "call_tool {tool: tool_id, arguments}. For several steps at once, use execute_dag."
)

CALL_TOOL = "call_tool"

CALL_TOOL_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "tool": {
            "type": "string",
            "minLength": 1,
            "maxLength": 300,
            "description": "The `tool_id` (server:tool) that search_tools returned, or a learned capability's name.",
        },
        "arguments": {
            "type": "object",
            "description": "The tool's arguments, matching the input_schema that search_tools returned.",
        },
    },
    "required": ["tool"],
    "additionalProperties": False,
}

CALL_TOOL_DESCRIPTION = (
    "Call one tool found with search_tools: `tool` is its tool_id (or a learned capability's name), `arguments` "
    "match its input_schema. Answers with the tool's own result."
)

NUL_REFUSED = "must not contain NUL (U+0000) characters"
SURROGATE_REFUSED = "must be Unicode text: a lone surrogate (U+D800 to U+DFFF) is not"
_TEXT_REFUSALS = frozenset({NUL_REFUSED, SURROGATE_REFUSED})
_SURROGATE = re.compile("[\ud800-\udfff]")
_TYPE = Draft202012Validator.VALIDATORS["type"]


def _type_of_text(validator: Validator, types: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    """The ``type`` keyword, and no NUL nor lone surrogate in a string where a type is declared: Postgres text
    cannot hold a NUL (and its error would name no field), and no encoder (the tokenizer's, UTF-8) a surrogate."""
    yield from _TYPE(validator, types, instance, schema)
    if isinstance(instance, str) and "\x00" in instance:
        yield ValidationError(NUL_REFUSED)
    if isinstance(instance, str) and _SURROGATE.search(instance):
        yield ValidationError(SURROGATE_REFUSED)


_Validator = validators.extend(Draft202012Validator, {"type": _type_of_text})

_SCHEMAS: dict[str, dict[str, Any]] = {SEARCH_TOOLS: SEARCH_TOOLS_SCHEMA}
_VALIDATORS: dict[str, Validator] = {}


def register(tool: str, schema: dict[str, Any]) -> None:
    """Check the arguments of meta-tool `tool` against `schema` from now on."""
    _SCHEMAS[tool] = schema
    _VALIDATORS[tool] = _Validator(schema)


register(SEARCH_TOOLS, SEARCH_TOOLS_SCHEMA)
register(CALL_TOOL, CALL_TOOL_SCHEMA)


def check_arguments(tool: str, arguments: Mapping[str, Any] | None) -> dict[str, Any]:
    """The arguments as a dict, or `InvalidRequestError` naming the first field that does not fit."""
    args = dict(arguments or {})
    error = next(iter(sorted(_VALIDATORS[tool].iter_errors(args), key=lambda e: list(e.path))), None)
    if error is not None:
        raise InvalidRequestError(_describe(tool, error), field=_field(error))
    return args


def check_strings(tool: str, arguments: Mapping[str, Any] | None) -> None:
    """`InvalidRequestError` naming the first string declared by the schema of `tool` that holds a NUL or a lone
    surrogate; nothing else of the schema is checked, for a tool whose own parser reports every other problem
    (`execute_dag`)."""
    errors = (e for e in _VALIDATORS[tool].iter_errors(dict(arguments or {})) if e.message in _TEXT_REFUSALS)
    error = next(iter(sorted(errors, key=lambda e: list(e.path))), None)
    if error is not None:
        raise InvalidRequestError(_describe(tool, error), field=_field(error))


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
) -> dict[str, Any]:
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
        **({"warnings": warnings} if (warnings := [w for w in (result.degraded, result.incomplete) if w]) else {}),
    }


def search_text(payload: Mapping[str, Any], *, listed: Sequence[str] = ()) -> str:
    """What a model reads of a `search_tools` answer: per hit its id, score and description, then its arguments
    (name, type, required, what they mean), then how to call it, then the servers that are down. `listed`: the
    names under which found tools are also in the client's tool list."""
    lines = [f"{len(payload['results'])} results for: {payload['query']}"]
    for i, hit in enumerate(payload["results"], 1):
        kind = " (learned capability)" if hit["kind"] == "capability" else ""
        lines.append(f"{i}. {hit['tool_id']}{kind}  [score {hit['score']:.2f}] {_cut(hit['description'], 200)}")
        lines.append(f"   arguments: {_arguments(hit['input_schema'])}")
    if payload["results"]:
        lines.append('Call one with call_tool {"tool": "<tool_id>", "arguments": {...}}.')
        if listed:
            lines.append(f"In your tool list too: {', '.join(listed)}.")
    lines += [f"! {warning}" for warning in payload.get("warnings", [])]
    for down in payload["unavailable_servers"]:
        lines.append(f"! server {down['server']} is {down['state']}: {down['reason'] or 'no reason given'}")
    return "\n".join(lines)


ARGUMENTS_SHOWN = 10
"""Arguments spelled out per hit in the text; the rest are in the structured `input_schema`."""


def _arguments(schema: Any) -> str:
    """``name (type, required): description; ...`` from a tool's input schema, or ``none``."""
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict) or not properties:
        return "none"
    required = set(schema.get("required") or ())
    parts = []
    for name, spec in list(properties.items())[:ARGUMENTS_SHOWN]:
        spec = spec if isinstance(spec, dict) else {}
        kind = _type_of(spec) + (", required" if name in required else "")
        about = f": {_cut(str(spec['description']), 100)}" if spec.get("description") else ""
        parts.append(f"{name} ({kind}){about}")
    if len(properties) > ARGUMENTS_SHOWN:
        parts.append(f"+{len(properties) - ARGUMENTS_SHOWN} more in input_schema")
    return "; ".join(parts)


def _type_of(spec: Mapping[str, Any]) -> str:
    if "enum" in spec and isinstance(spec["enum"], list):
        return "one of " + "|".join(json.dumps(v, ensure_ascii=False) for v in spec["enum"][:8])
    kind = spec.get("type")
    if isinstance(kind, list):
        return "|".join(str(k) for k in kind)
    if kind == "array" and isinstance(spec.get("items"), dict) and "type" in spec["items"]:
        return f"array of {spec['items']['type']}"
    return str(kind) if kind else "any"


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
