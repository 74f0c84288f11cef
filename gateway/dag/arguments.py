"""Checking a task's arguments against its tool's input schema (JSON Schema, 2020-12 unless it declares one).

Before the run, a value that holds a `$OUTPUT` reference is not checked (its value is not known yet);
`check_resolved` checks the arguments again once the references are substituted. A schema that is itself
invalid or unresolvable (remote `$ref`s are never fetched) is the downstream server's business: such a
tool's arguments are left for the server to judge.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry
from referencing.exceptions import Unresolvable

from gateway.dag._json import join_field, render_path
from gateway.dag.model import Task
from gateway.dag.references import holds_reference
from gateway.errors import DagProblem, DagValidationError

# Keywords whose verdict on an object or list cannot change when a reference inside it is substituted.
_SHAPE_KEYWORDS = frozenset(
    {
        "type",
        "required",
        "additionalProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "minItems",
        "maxItems",
        "dependentRequired",
    }
)
_MAX_MESSAGE = 300
_CACHED_VALIDATORS = 1024
# No retrieval: jsonschema's default registry would fetch remote `$ref`s over the network.
_OFFLINE: Registry[Any] = Registry()


def validator(schema: Any) -> Validator | None:
    """A validator for `schema`, or None when arguments go unchecked (no schema, or an invalid one).
    Checking a schema costs about a millisecond, so validators are kept per distinct schema."""
    if not isinstance(schema, dict | bool):
        return None
    try:
        text = json.dumps(schema, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return _validator(text)


@functools.lru_cache(maxsize=_CACHED_VALIDATORS)
def _validator(schema_text: str) -> Validator | None:
    schema = json.loads(schema_text)
    declared = schema.get("$schema") if isinstance(schema, dict) else None
    cls = (
        validator_for(schema, default=Draft202012Validator)
        if isinstance(declared, str)
        else Draft202012Validator
    )
    try:
        cls.check_schema(schema)
    except SchemaError:
        return None
    return cls(schema, registry=_OFFLINE)


def argument_problems(
    task: str | None, label: str, arguments: dict[str, Any], check: Validator | None, *, resolved: bool
) -> list[DagProblem]:
    """Every way `arguments` miss the schema, each naming the task and argument. Unless `resolved`, values
    that hold a reference are skipped."""
    if check is None:
        return []
    try:
        errors = sorted(
            check.iter_errors(arguments), key=lambda e: (list(map(str, e.absolute_path)), e.message)
        )
    except (Unresolvable, RecursionError):
        return []
    kept = [e for e in errors if resolved or not _waits_for_reference(e)]
    return [problem for error in kept for problem in _problems(task, label, error)]


def check_resolved(task: Task, arguments: dict[str, Any], schema: Any) -> None:
    """Check `arguments` after substitution; raise `DagValidationError` with every mismatch."""
    problems = argument_problems(task.id, f"task '{task.id}'", arguments, validator(schema), resolved=True)
    if problems:
        raise DagValidationError(problems)


def _waits_for_reference(error: ValidationError) -> bool:
    if isinstance(error.instance, str):
        return holds_reference(error.instance)
    return error.validator not in _SHAPE_KEYWORDS and holds_reference(error.instance)


def _problems(task: str | None, label: str, error: ValidationError) -> Iterable[DagProblem]:
    parts = tuple(error.absolute_path)
    if error.validator == "required" and isinstance(error.instance, dict):
        for name in _missing(error):
            where = render_path((*parts, name))
            yield DagProblem(
                task, join_field("arguments", where), f"{label}: missing required argument '{where}'"
            )
    elif error.validator == "additionalProperties" and isinstance(error.instance, dict):
        known = list(error.schema.get("properties", {})) if isinstance(error.schema, dict) else []
        expected = f"expected: {', '.join(known)}" if known else "none expected"
        for name in _unexpected(error, known):
            where = render_path((*parts, name))
            yield DagProblem(
                task, join_field("arguments", where), f"{label}: unknown argument '{where}' ({expected})"
            )
    else:
        where = render_path(parts)
        message = _cut(error.message)
        if where:
            yield DagProblem(task, join_field("arguments", where), f"{label}: argument '{where}': {message}")
        else:
            yield DagProblem(task, "arguments", f"{label}: arguments: {message}")


def _missing(error: ValidationError) -> list[str]:
    """The one property this `required` error is about (jsonschema yields one error per property)."""
    names = [n for n in error.validator_value if isinstance(n, str) and n not in error.instance]
    return [n for n in names if error.message.startswith(repr(n))][:1] or names[:1]


def _unexpected(error: ValidationError, known: list[str]) -> list[str]:
    patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
    return [k for k in error.instance if k not in known and not _matches_any(k, patterns)]


def _matches_any(key: str, patterns: Any) -> bool:
    return isinstance(patterns, dict) and any(re.search(p, key) for p in patterns)


def _cut(message: str) -> str:
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."
