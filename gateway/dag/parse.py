"""From `execute_dag` arguments to a `Dag`, with every problem found reported at once.

`parse_dag` checks the whole request before anything runs: the document's shape, the options, each task
(see `tasks`), then the links between tasks: dependencies and references to missing tasks, self-dependencies
and cycles. `replan` puts new or replacement tasks into a running DAG and checks the result as a whole.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from itertools import pairwise
from typing import Any

from gateway.dag import order
from gateway.dag._json import join_field, key_field, kind, show
from gateway.dag._problems import Problems, did_you_mean
from gateway.dag.model import (
    CONCURRENCY_RANGE,
    MAX_TASKS,
    TIMEOUT_MS_RANGE,
    Dag,
    DagOptions,
    Task,
    to_document,
)
from gateway.dag.references import Reference
from gateway.dag.tasks import Draft, ToolSchemas, read_task
from gateway.errors import DagValidationError

_DOCUMENT_KEYS = ("tasks", "intent", "options")
_INT_OPTIONS = {"max_concurrency": CONCURRENCY_RANGE, "timeout_ms": TIMEOUT_MS_RANGE}
_OPTION_KEYS = (*_INT_OPTIONS, "per_layer_validation")
_TASKS_SHAPE = "[{id, tool, arguments, depends_on}]"

# Why a task depends on another: None for `depends_on`, else (argument path, reference).
_Origin = tuple[str, Reference] | None


def parse_dag(document: Any, *, tool_schemas: Mapping[str, Any]) -> Dag:
    """The validated DAG of `document` (the raw `execute_dag` arguments), or `DagValidationError` listing
    every problem. `tool_schemas` maps each known ``server:tool`` id to its input schema (None: any
    object)."""
    problems = Problems()
    if not isinstance(document, dict):
        problems.add(
            None,
            "arguments",
            f"execute_dag arguments must be an object {{tasks, intent?, options?}}, got {kind(document)}",
        )
        raise problems.error()
    _check_keys(document, _DOCUMENT_KEYS, "", problems)
    intent = document.get("intent")
    if intent is not None and not isinstance(intent, str):
        problems.add(None, "intent", f"intent must be a string, got {kind(intent)}")
    options = _read_options(document.get("options"), problems)
    drafts = _read_tasks(document, ToolSchemas(tool_schemas), problems)
    deps = _check_links(drafts, problems)
    if problems:
        raise problems.error()
    return Dag(_build(drafts, deps), intent, options)


def replan(dag: Dag, finished: set[str], new_tasks: Any, *, tool_schemas: Mapping[str, Any]) -> Dag:
    """`dag` with `new_tasks` added, or replacing the not yet finished tasks of the same id; the result is
    validated as a whole. Raises `DagValidationError`, also when a new task would replace a finished one."""
    problems = Problems()
    if not isinstance(new_tasks, list):
        problems.add(None, "tasks", f"replan: tasks must be a list {_TASKS_SHAPE}, got {kind(new_tasks)}")
        raise problems.error()
    document = to_document(dag)
    _merge(document["tasks"], new_tasks, finished, problems)
    try:
        parsed = parse_dag(document, tool_schemas=tool_schemas)
    except DagValidationError as exc:
        problems.add_all(exc.problems)
        raise problems.error() from None
    if problems:
        raise problems.error()
    return parsed


def _merge(tasks: list[Any], new_tasks: list[Any], finished: set[str], problems: Problems) -> None:
    """Put each new task in the place of the unfinished task of its id, or else at the end."""
    position = {task["id"]: i for i, task in enumerate(tasks)}
    replaced: set[str] = set()
    for raw in new_tasks:
        task_id = raw.get("id") if isinstance(raw, dict) else None
        if not isinstance(task_id, str) or task_id not in position or task_id in replaced:
            tasks.append(raw)
        elif task_id in finished:
            problems.add(
                task_id, "id", f"task '{task_id}': already finished; a finished task cannot be replaced"
            )
        else:
            tasks[position[task_id]] = raw
            replaced.add(task_id)


def _build(drafts: list[Draft], deps: Mapping[str, list[str]]) -> tuple[Task, ...]:
    """The tasks of drafts that raised no problem: each has its id and a known tool."""
    tasks = []
    for d in drafts:
        assert d.id is not None and d.tool is not None, "a draft without problems has an id and a tool"
        tasks.append(Task(d.id, d.tool, copy.deepcopy(d.arguments), tuple(deps[d.id])))
    return tuple(tasks)


def _check_keys(raw: dict[Any, Any], allowed: tuple[str, ...], where: str, problems: Problems) -> None:
    for key in raw:
        if key not in allowed:
            hint = did_you_mean(str(key), allowed) or f" (expected: {', '.join(allowed)})"
            problems.add(
                None,
                join_field(where, key_field(key)),
                f"{where or 'execute_dag'}: unknown key {show(key)}{hint}",
            )


def _read_options(raw: Any, problems: Problems) -> DagOptions:
    if raw is None:
        return DagOptions()
    if not isinstance(raw, dict):
        expected = ", ".join(_OPTION_KEYS)
        problems.add(None, "options", f"options must be an object {{{expected}}}, got {kind(raw)}")
        return DagOptions()
    _check_keys(raw, _OPTION_KEYS, "options", problems)
    values: dict[str, Any] = {}
    for name, (low, high) in _INT_OPTIONS.items():
        if raw.get(name) is not None:
            values[name] = _int_option(name, raw[name], low, high, problems)
    flag = raw.get("per_layer_validation")
    if flag is not None and not isinstance(flag, bool):
        message = f"options.per_layer_validation must be true or false, got {show(flag)}"
        problems.add(None, "options.per_layer_validation", message)
    elif flag is not None:
        values["per_layer_validation"] = flag
    return DagOptions(**values)


def _int_option(name: str, value: Any, low: int, high: int, problems: Problems) -> int:
    """`value` when it is an integer from `low` to `high` (``8.0`` counts, ``true`` does not), else
    `low` after reporting it."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        message = f"options.{name} must be an integer from {low} to {high}, got {show(value)}"
        problems.add(None, f"options.{name}", message)
        return low
    return value


def _read_tasks(document: dict[Any, Any], tools: ToolSchemas, problems: Problems) -> list[Draft]:
    raw = document.get("tasks")
    if "tasks" not in document or not isinstance(raw, list) or not raw or len(raw) > MAX_TASKS:
        problems.add(None, "tasks", _tasks_problem(raw, "tasks" in document))
        return []
    drafts: list[Draft] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        draft = read_task(index, item, seen, tools, problems)
        if draft is not None:
            drafts.append(draft)
            if draft.id is not None:
                seen[draft.id] = index
    return drafts


def _tasks_problem(raw: Any, present: bool) -> str:
    if not present:
        return f"tasks: missing; list the tasks to run as {_TASKS_SHAPE}"
    if not isinstance(raw, list):
        return f"tasks must be a list {_TASKS_SHAPE}, got {kind(raw)}"
    if not raw:
        return "tasks: the list is empty; a DAG needs at least one task"
    return f"tasks: at most {MAX_TASKS} tasks in a DAG, got {len(raw)}"


def _check_links(drafts: list[Draft], problems: Problems) -> dict[str, list[str]]:
    """Report links to missing tasks, to the task itself, and cycles; the dependencies of every task."""
    nodes = {d.id for d in drafts if d.id is not None}
    deps: dict[str, list[str]] = {}
    origins: dict[tuple[str, str], _Origin] = {}
    for draft in drafts:
        links = _links(draft, nodes, problems)
        if draft.id is not None:
            deps[draft.id] = list(dict.fromkeys(dep for dep, _ in links))
            for dep, origin in reversed(links):
                origins[(draft.id, dep)] = origin
    order_ = [d.id for d in drafts if d.id is not None]
    for cycle in order.cycles(order_, deps):
        _report_cycle(cycle, origins, problems)
    return deps


def _links(draft: Draft, nodes: set[str], problems: Problems) -> list[tuple[str, _Origin]]:
    """`draft`'s links to other tasks that exist, reporting the others."""
    own = draft.id or draft.task
    links: list[tuple[str, _Origin]] = []
    for dep in draft.depends_on:
        if dep == own:
            problems.add(
                draft.task,
                draft.where("depends_on"),
                f"{draft.label}: depends_on: a task cannot depend on itself",
            )
        elif dep not in nodes:
            problems.add(
                draft.task,
                draft.where("depends_on"),
                f"{draft.label}: depends_on: no task {show(dep)}{_hint(dep, nodes, problems)}",
            )
        else:
            links.append((dep, None))
    for where, ref in draft.references:
        at = f"{draft.label}: argument '{where}': {ref.shown()}"
        if ref.task == own:
            problems.add(
                draft.task,
                draft.where(join_field("arguments", where)),
                f"{at} refers to the task's own output",
            )
        elif ref.task not in nodes:
            problems.add(
                draft.task,
                draft.where(join_field("arguments", where)),
                f"{at} refers to no task '{ref.task}'{_hint(ref.task, nodes, problems)}",
            )
        else:
            links.append((ref.task, (where, ref)))
    return links


def _hint(task_id: str, nodes: set[str], problems: Problems) -> str:
    return "" if problems.full else did_you_mean(task_id, nodes)


def _report_cycle(cycle: list[str], origins: Mapping[tuple[str, str], _Origin], problems: Problems) -> None:
    """``cycle: a -> b -> a``, naming the references among its links, since those are easy to miss."""
    edges = list(pairwise(cycle))
    through = [(task, origin) for task, dep in edges if (origin := origins[(task, dep)]) is not None]
    notes = "; ".join(f"'{task}' uses {ref.shown()} in argument '{where}'" for task, (where, ref) in through)
    field = join_field("arguments", through[0][1][0]) if through else "depends_on"
    task = through[0][0] if through else cycle[0]
    problems.add(task, field, f"cycle: {' -> '.join(cycle)}" + (f" ({notes})" if notes else ""))
