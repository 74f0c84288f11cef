"""The canonical form of a DAG: its structure with literal arguments lifted into parameters, and its hash.

Two runs of the same workflow with other literal values (another path, another URL) share one canonical
document and so one hash; another structure or another tool gives another hash. In the canonical document
task ids are ``t1..tn`` in topological order, `$OUTPUT[...]` references are kept (renamed to the new ids),
and each top-level argument value without a reference becomes the placeholder ``"$PARAM[p_<task>_<arg>]"``.
`instantiate` turns a canonical document and parameter values back into a DAG document for `parse_dag`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from gateway.dag.model import Dag, Task
from gateway.dag.references import holds_reference

PARAM_MARKER = "$PARAM["
_PLACEHOLDER = re.compile(r"\$PARAM\[(.+)\]", re.DOTALL)
_REFERENCE_ID = re.compile(r"(?<!\$)\$OUTPUT\[([A-Za-z_][A-Za-z0-9_-]{0,63})\]")
# Keywords copied from a tool's property schema; others (e.g. a `$ref` into the tool's own definitions)
# would not resolve inside the capability's parameters schema.
_SCHEMA_KEYS = frozenset(
    "type description title enum const format pattern minimum maximum exclusiveMinimum exclusiveMaximum"
    " minLength maxLength items minItems maxItems uniqueItems properties required additionalProperties".split()
)


@dataclass(frozen=True)
class Canonical:
    """A DAG in canonical form: `document` (hashed as `hash`), the JSON Schema of its parameters, the
    observed parameter values, and the sorted distinct tool ids it calls."""

    document: dict[str, Any]
    parameters_schema: dict[str, Any]
    defaults: dict[str, Any]
    tools: tuple[str, ...]
    hash: str


def canonicalize(dag: Dag, schemas: Mapping[str, dict[str, Any] | None]) -> Canonical:
    """The canonical form of `dag`; `schemas` maps tool ids to input schemas (missing or None: unknown)."""
    new_ids = _canonical_ids(dag)
    params = _Parameters()
    tasks = [
        _canonical_task(task, new_ids, schemas.get(task.tool) or {}, params)
        for task in sorted(dag.tasks, key=lambda t: _number(new_ids[t.id]))
    ]
    document: dict[str, Any] = {"tasks": tasks}
    tools = tuple(sorted({t.tool for t in dag.tasks}))
    return Canonical(document, params.schema(), params.defaults, tools, document_hash(document))


def document_hash(document: Mapping[str, Any]) -> str:
    """SHA-256 hex of `document` as compact JSON with sorted keys."""
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def instantiate(
    canonical_document: Mapping[str, Any],
    parameters: Mapping[str, Any],
    *,
    parameters_schema: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A DAG document for `parse_dag`: `canonical_document` with each ``$PARAM[...]`` placeholder replaced by
    its value in `parameters`. Without `parameters_schema` every parameter must be given; with it, a missing
    one takes its schema default, or is left out when optional without a default. Raises ValueError naming a
    missing required parameter, or a parameter the document does not have."""
    schema = parameters_schema or {}
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ()) if parameters_schema is not None else None
    known: set[str] = set()
    tasks = []
    for task in canonical_document["tasks"]:
        arguments: dict[str, Any] = {}
        for name, value in task["arguments"].items():
            param = _placeholder(value)
            if param is None:
                arguments[name] = copy.deepcopy(value)
                continue
            known.add(param)
            if param in parameters:
                arguments[name] = copy.deepcopy(parameters[param])
            elif required is None or param in required:
                raise ValueError(f"missing required parameter '{param}'")
            elif "default" in (properties.get(param) or {}):
                arguments[name] = copy.deepcopy(properties[param]["default"])
        tasks.append({**task, "arguments": arguments, "depends_on": list(task.get("depends_on", ()))})
    unknown = sorted(set(parameters) - known)
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}")
    return {"tasks": tasks}


@dataclass
class _Parameters:
    """The parameters lifted so far: their schemas, the required ones, their observed values."""

    properties: dict[str, Any] = field(default_factory=dict)
    required: list[str] = field(default_factory=list)
    defaults: dict[str, Any] = field(default_factory=dict)

    def lift(self, name: str, value: Any, tool_schema: Mapping[str, Any], argument: str) -> str:
        """Record `value` as parameter `name`; its placeholder."""
        self.defaults[name] = copy.deepcopy(value)
        self.properties[name] = _parameter_schema(tool_schema, argument, value)
        if argument in (tool_schema.get("required") or ()):
            self.required.append(name)
        return f"{PARAM_MARKER}{name}]"

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of an object holding these parameters."""
        return {
            "type": "object",
            "properties": self.properties,
            "required": self.required,
            "additionalProperties": False,
        }


def _canonical_task(
    task: Task, new_ids: Mapping[str, str], tool_schema: Mapping[str, Any], params: _Parameters
) -> dict[str, Any]:
    """`task` renamed, its reference-free top-level argument values lifted into `params`."""
    new_id = new_ids[task.id]
    arguments = {
        name: _rename(value, new_ids)
        if holds_reference(value)
        else params.lift(f"p_{new_id}_{name}", value, tool_schema, name)
        for name, value in task.arguments.items()
    }
    depends_on = sorted((new_ids[d] for d in task.depends_on), key=_number)
    return {"id": new_id, "tool": task.tool, "arguments": arguments, "depends_on": depends_on}


def _canonical_ids(dag: Dag) -> dict[str, str]:
    """``t1..tn`` by topological layer; within a layer by tool id, then the new ids of the task's
    dependencies and its argument names (so that reordering the submission rarely matters), then
    submission order."""
    submitted = {t.id: i for i, t in enumerate(dag.tasks)}
    new_ids: dict[str, str] = {}
    for layer in dag.layers:
        for task in sorted((dag.task(i) for i in layer), key=lambda t: _tie_key(t, new_ids, submitted)):
            new_ids[task.id] = f"t{len(new_ids) + 1}"
    return new_ids


def _tie_key(task: Task, new_ids: Mapping[str, str], submitted: Mapping[str, int]) -> tuple[Any, ...]:
    deps = sorted(_number(new_ids[d]) for d in task.depends_on)
    return task.tool, deps, sorted(task.arguments), submitted[task.id]


def _number(new_id: str) -> int:
    return int(new_id[1:])


def _rename(value: Any, new_ids: Mapping[str, str]) -> Any:
    """`value` with the task id of every `$OUTPUT[...]` reference, at any depth, renamed."""
    if isinstance(value, str):
        return _REFERENCE_ID.sub(lambda m: f"$OUTPUT[{new_ids.get(m.group(1), m.group(1))}]", value)
    if isinstance(value, dict):
        return {key: _rename(item, new_ids) for key, item in value.items()}
    if isinstance(value, list):
        return [_rename(item, new_ids) for item in value]
    return value


def _parameter_schema(tool_schema: Mapping[str, Any], name: str, value: Any) -> dict[str, Any]:
    """The tool's schema for argument `name` when it has one, else the value's JSON type; default `value`."""
    declared = (tool_schema.get("properties") or {}).get(name)
    if isinstance(declared, dict) and declared:
        schema = {k: copy.deepcopy(v) for k, v in declared.items() if k in _SCHEMA_KEYS}
    else:
        schema = {}
    if "type" not in schema and "enum" not in schema and "const" not in schema:
        schema["type"] = _json_type(value)
    return {**schema, "default": copy.deepcopy(value)}


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _placeholder(value: Any) -> str | None:
    match = _PLACEHOLDER.fullmatch(value) if isinstance(value, str) else None
    return match.group(1) if match else None
