"""Reading one submitted task, ``{id, tool, arguments?, depends_on?}``, noting every problem on the way.

What can be read is kept in a `Draft` even when something else about the task is wrong, so that one pass
finds all the problems of a DAG; links between tasks (dependencies, references, cycles) are checked later
over all the drafts. `arguments` and `depends_on` may be left out (or null): no arguments, no dependencies.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from jsonschema.protocols import Validator

from gateway.dag._json import join_field, key_field, kind, nests_deeper_than, show
from gateway.dag._problems import MAX_SUGGESTED_LEN, Problems, did_you_mean, suggestion
from gateway.dag.arguments import argument_problems, validator
from gateway.dag.model import MAX_ARGUMENT_DEPTH, TASK_ID, TASK_ID_RULE
from gateway.dag.references import Reference, malformed_in, references_in
from gateway.errors import DagProblem

TASK_KEYS = ("id", "tool", "arguments", "depends_on")
_TOOL_ID = re.compile(r"[^:\s]+:\S+")


@dataclass
class Draft:
    """A task as far as it could be read.

    `id` is its id when that is a string no earlier task uses (the task's node in the graph); `task` is the
    id problems name, when well-formed; `label` names the task in messages (``task 'a'``, ``tasks[3]``).
    """

    index: int
    id: str | None
    label: str
    task: str | None
    tool: str | None = None
    arguments: dict[str, Any] = field(default_factory=dict)
    depends_on: list[str] = field(default_factory=list)
    references: list[tuple[str, Reference]] = field(default_factory=list)

    def where(self, name: str) -> str:
        """`name` as a problem's field: relative to the task when it has a usable id."""
        return name if self.task is not None else join_field(f"tasks[{self.index}]", name)


class ToolSchemas:
    """The known tools and their input schemas, with validators built once per tool."""

    def __init__(self, schemas: Mapping[str, Any]) -> None:
        self.schemas = schemas
        self.known = sorted(str(tool) for tool in schemas)
        self._validators: dict[str, Validator | None] = {}

    def validator(self, tool: str) -> Validator | None:
        if tool not in self._validators:
            self._validators[tool] = validator(self.schemas[tool])
        return self._validators[tool]


def read_task(
    index: int, raw: Any, seen: Mapping[str, int], tools: ToolSchemas, problems: Problems
) -> Draft | None:
    """Read the `index`-th task; `seen` maps the ids already read to their index (for duplicates)."""
    if not isinstance(raw, dict):
        got = kind(raw)
        problems.add(
            None,
            f"tasks[{index}]",
            f"tasks[{index}]: a task must be an object {{id, tool, arguments, depends_on}}, got {got}",
        )
        return None
    draft = _read_id(index, raw.get("id"), "id" in raw, seen, problems)
    for key in raw:
        if key not in TASK_KEYS:
            hint = did_you_mean(str(key), TASK_KEYS) or f" (expected: {', '.join(TASK_KEYS)})"
            problems.add(
                draft.task, draft.where(key_field(key)), f"{draft.label}: unknown key {show(key)}{hint}"
            )
    if "tool" not in raw:
        problems.add(
            draft.task, draft.where("tool"), f"{draft.label}: missing key 'tool' (a 'server:tool' id)"
        )
    else:
        draft.tool = _read_tool(draft, raw["tool"], tools, problems)
    _read_arguments(draft, raw.get("arguments"), tools, problems)
    draft.depends_on = _read_depends_on(draft, raw.get("depends_on"), problems)
    return draft


def _read_id(index: int, raw: Any, present: bool, seen: Mapping[str, int], problems: Problems) -> Draft:
    where = f"tasks[{index}]"
    if not present or not isinstance(raw, str):
        message = "missing key 'id'" if not present else f"id must be a string, got {kind(raw)}"
        problems.add(None, f"{where}.id", f"{where}: {message}")
        return Draft(index, None, where, None)
    if not TASK_ID.fullmatch(raw):
        problems.add(None, f"{where}.id", f"{where}: id {show(raw)} is malformed: use {TASK_ID_RULE}")
        return Draft(index, raw if raw not in seen else None, where, None)
    if raw in seen:
        label = f"task '{raw}' (tasks[{index}])"
        problems.add(raw, "id", f"{label}: duplicate id, already used by tasks[{seen[raw]}]")
        return Draft(index, None, label, raw)
    return Draft(index, raw, f"task '{raw}'", raw)


def _read_tool(draft: Draft, raw: Any, tools: ToolSchemas, problems: Problems) -> str | None:
    if isinstance(raw, str) and raw in tools.schemas:
        return raw
    if not isinstance(raw, str):
        problems.add(
            draft.task,
            draft.where("tool"),
            f"{draft.label}: tool must be a 'server:tool' id, got {kind(raw)}",
        )
    elif not _TOOL_ID.fullmatch(raw):
        hint = suggestion(_close_tools(raw, tools.known))
        problems.add(
            draft.task,
            draft.where("tool"),
            f"{draft.label}: tool {show(raw)} is not a 'server:tool' id{hint}",
        )
    else:
        hint = suggestion(_close_tools(raw, tools.known))
        problems.add(draft.task, draft.where("tool"), f"{draft.label}: unknown tool {show(raw)}{hint}")
    return None


def _close_tools(tool: str, known: Sequence[str]) -> list[str]:
    """Known ids close to `tool`, whole or by bare tool name (``red_file`` finds ``fs:read_file``); a bare
    name that some server has exactly suggests only those servers' tools."""
    if len(tool) > MAX_SUGGESTED_LEN:
        return []
    by_name: dict[str, list[str]] = {}
    for tool_id in known:
        by_name.setdefault(tool_id.partition(":")[2] or tool_id, []).append(tool_id)
    bare = tool.partition(":")[2] or tool
    if bare in by_name:
        return by_name[bare][:3]
    close_names = difflib.get_close_matches(bare, list(by_name), n=3)
    close = difflib.get_close_matches(tool, known, n=3) + [i for n in close_names for i in by_name[n]]
    return list(dict.fromkeys(close))[:3]


def _read_arguments(draft: Draft, raw: Any, tools: ToolSchemas, problems: Problems) -> None:
    arguments = {} if raw is None else raw
    shape = _shape_problem(arguments)
    if shape is not None:
        problems.add(draft.task, draft.where("arguments"), f"{draft.label}: {shape}")
        return
    draft.arguments = arguments
    draft.references = list(references_in(arguments))
    for where, text in malformed_in(arguments):
        problems.add(
            draft.task,
            draft.where(join_field("arguments", where)),
            f"{draft.label}: argument '{where}': malformed reference {show(text)} "
            "(write $OUTPUT[task_id] or $OUTPUT[task_id].path.to[0])",
        )
    if draft.tool is not None and not problems.full:
        check = tools.validator(draft.tool)
        found = argument_problems(draft.task, draft.label, arguments, check, resolved=False)
        problems.add_all(DagProblem(p.task, draft.where(p.field), p.message) for p in found)


def _shape_problem(arguments: Any) -> str | None:
    if not isinstance(arguments, dict):
        return f"arguments must be an object, got {kind(arguments)}"
    if any(not isinstance(key, str) for key in arguments) or nests_deeper_than(arguments, MAX_ARGUMENT_DEPTH):
        return f"arguments must be JSON nested at most {MAX_ARGUMENT_DEPTH} levels deep"
    return None


def _read_depends_on(draft: Draft, raw: Any, problems: Problems) -> list[str]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        problems.add(
            draft.task,
            draft.where("depends_on"),
            f"{draft.label}: depends_on must be a list of task ids, got {kind(raw)}",
        )
        return []
    for position, dep in enumerate(raw):
        if not isinstance(dep, str):
            problems.add(
                draft.task,
                draft.where(f"depends_on[{position}]"),
                f"{draft.label}: depends_on[{position}] must be a task id, got {kind(dep)}",
            )
    return list(dict.fromkeys(dep for dep in raw if isinstance(dep, str)))
