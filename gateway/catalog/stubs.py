"""Typed Python stubs of tools, for code that calls them as functions of the sandbox's ``tools`` module.

Each tool is a keyword-only async function named ``<server>__<tool>`` (made a Python identifier), its
parameters and types read from the tool's input schema: the type checker in the sandbox then names a missing,
unknown or mistyped argument before anything runs. Pure code: the schema in, the stub text out.
"""

from __future__ import annotations

import keyword
import re
from collections.abc import Iterable, Mapping
from typing import Any

from gateway.models import ToolDef

MODULE = "tools"
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]")
_SCALARS = {"string": "str", "integer": "int", "number": "float", "boolean": "bool", "null": "None"}
_DOC_CHARS = 300


def function_name(server: str, tool: str) -> str:
    """``server__tool`` as a Python identifier that the sandbox exposes (no leading ``_``, not a keyword)."""
    name = _NOT_IDENTIFIER.sub("_", f"{server}__{tool}")
    if not name[0].isalpha():
        name = f"t{name}"
    return f"{name}_" if keyword.iskeyword(name) else name


def function_names(tool_ids: Iterable[str]) -> dict[str, str]:
    """Function name -> tool id for `tool_ids`; names that collide take a numbered suffix, in sorted id order."""
    names: dict[str, str] = {}
    for tool_id in sorted(tool_ids):
        server, _, tool = tool_id.partition(":")
        base = function_name(server, tool)
        name, n = base, 2
        while name in names:
            name, n = f"{base}_{n}", n + 1
        names[name] = tool_id
    return names


def stubs(functions: Mapping[str, ToolDef]) -> str:
    """The ``.pyi`` text of a module holding `functions` (name -> tool)."""
    lines = ["from typing import Any, Literal", ""]
    for name, tool in functions.items():
        lines.extend(_function(name, tool))
    return "\n".join(lines) + "\n"


def parameter_names(tool: ToolDef) -> list[str]:
    """The schema's properties that are Python identifiers (the others travel through ``**extra``)."""
    properties = (tool.input_schema or {}).get("properties") or {}
    return [p for p in properties if p.isidentifier() and not keyword.iskeyword(p) and not p.startswith("_")]


def _function(name: str, tool: ToolDef) -> list[str]:
    schema = tool.input_schema or {}
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    named = parameter_names(tool)
    params = [f"{p}: {_type(properties[p])}" for p in named if p in required]
    params += [f"{p}: {_optional(_type(properties[p]))} = None" for p in named if p not in required]
    if len(named) < len(properties) or schema.get("additionalProperties", True) is not False:
        params.append("**extra: Any")
    signature = f"async def {name}(*, {', '.join(params)}) -> Any:" if params else f"async def {name}() -> Any:"
    doc = " ".join((tool.description or tool.tool_id).split())[:_DOC_CHARS].replace("\\", "\\\\").replace('"', "'")
    return [signature, f'    """{tool.tool_id}: {doc}"""', "    ...", ""]


def _optional(kind: str) -> str:
    return kind if kind == "Any" or "None" in kind.split(" | ") else f"{kind} | None"


def _type(schema: Any, depth: int = 0) -> str:
    """A Python type for a JSON Schema; ``Any`` where the schema says too little or too much."""
    if not isinstance(schema, dict) or depth > 3:
        return "Any"
    if isinstance(schema.get("enum"), list) and schema["enum"] and all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in schema["enum"]):
        return f"Literal[{', '.join(repr(v) for v in schema['enum'])}]"
    kind = schema.get("type")
    if isinstance(kind, list):
        parts = [_type({**schema, "type": k}, depth + 1) for k in kind if isinstance(k, str)]
        return " | ".join(dict.fromkeys(parts)) if parts and "Any" not in parts else "Any"
    if kind in _SCALARS:
        return "float" if kind == "number" else _SCALARS[kind]
    if kind == "array":
        return f"list[{_type(schema.get('items'), depth + 1)}]"
    if kind == "object":
        return "dict[str, Any]"
    return "Any"
