"""A code run's tool calls as the workflow they were: tasks, which call fed which, and the layers they ran in.

`execute_code` records each call the code made (`Invocation`); `as_dag` turns the trace into a `Dag` so that
a program teaches what a DAG teaches (edges, intents, reliability). The code's data flow is not visible to the
gateway, so it is read from the values: a call depends on an earlier call that had ended before it started and
whose output holds one of its distinctive argument values (a string of three characters or more, a number of
three digits or more). Calls that overlapped in time (``asyncio.gather``) share a layer.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.dag.model import Dag, Task
from gateway.dag.state import TaskResult, TaskStatus

MIN_DISTINCTIVE = 3
"""Shorter values (``"."``, ``10``, ``true``) appear in any output by chance."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Invocation:
    """One tool call made by code: its order, tool, arguments, when it ran (ms from the run's start) and how it
    ended; `output` is what the code received (None after an error)."""

    seq: int
    tool: str
    arguments: dict[str, Any]
    started_ms: float
    duration_ms: float
    ok: bool
    output: Any = None
    error: str | None = None

    @property
    def task_id(self) -> str:
        return f"call{self.seq}"

    @property
    def ended_ms(self) -> float:
        return self.started_ms + self.duration_ms


def as_dag(invocations: Sequence[Invocation], intent: str | None) -> Dag:
    """The trace as a DAG in call order, with the data-flow dependencies and the observed layers."""
    texts = {inv.seq: _text(inv.output) for inv in invocations if inv.ok}
    tasks = tuple(Task(id=inv.task_id, tool=inv.tool, arguments=inv.arguments,
                       depends_on=fed_by(inv, invocations, texts)) for inv in invocations)
    depends = {t.id: t.depends_on for t in tasks}
    return Dag(tasks=tasks, intent=intent, observed=observed_layers(invocations, depends))


def results(invocations: Sequence[Invocation], dag: Dag) -> dict[str, TaskResult]:
    """Each call's result as a task's, in the layer it ran in."""
    layer_of = {task: n for n, layer in enumerate(dag.layers) for task in layer}
    return {inv.task_id: TaskResult(id=inv.task_id, status=TaskStatus.OK if inv.ok else TaskStatus.ERROR,
                                    layer=layer_of[inv.task_id], output=inv.output, error=inv.error,
                                    duration_ms=inv.duration_ms) for inv in invocations}


def fed_by(inv: Invocation, invocations: Iterable[Invocation], texts: dict[int, str]) -> tuple[str, ...]:
    """The earlier calls whose output `inv`'s arguments were seen to come from."""
    values = distinctive(inv.arguments)
    if not values:
        return ()
    return tuple(
        earlier.task_id for earlier in invocations
        if earlier.seq < inv.seq and earlier.seq in texts and earlier.ended_ms <= inv.started_ms
        and any(value in texts[earlier.seq] for value in values)
    )


def observed_layers(invocations: Sequence[Invocation],
                    depends: Mapping[str, Sequence[str]]) -> tuple[tuple[str, ...], ...]:
    """Calls in start order: a call joins the current layer when it started while one of the layer's calls was
    still running and depends on none of them; otherwise it opens the next layer."""
    layers: list[list[Invocation]] = []
    for inv in sorted(invocations, key=lambda i: (i.started_ms, i.seq)):
        current = layers[-1] if layers else []
        overlaps = any(other.ended_ms > inv.started_ms for other in current)
        if overlaps and not {other.task_id for other in current} & set(depends.get(inv.task_id, ())):
            current.append(inv)
        else:
            layers.append([inv])
    return tuple(tuple(i.task_id for i in layer) for layer in layers)


def distinctive(arguments: Any) -> set[str]:
    """The argument values long enough to be told apart in another call's output, as text."""
    found: set[str] = set()
    if isinstance(arguments, dict):
        for value in arguments.values():
            found |= distinctive(value)
    elif isinstance(arguments, list):
        for value in arguments:
            found |= distinctive(value)
    elif isinstance(arguments, str) and len(arguments.strip()) >= MIN_DISTINCTIVE:
        found.add(arguments.strip())
    elif isinstance(arguments, int | float) and not isinstance(arguments, bool) and len(str(arguments)) >= 3:
        found.add(str(arguments))
    return found


def _text(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False, default=str)
