"""The validated DAG of an `execute_dag` request: its tasks, options and topological layers, as plain values.

A `Dag` only ever comes out of `parse_dag` (or `replan`), so its tasks' ids are unique, every dependency names
one of its tasks, and it has no cycle. `to_document` turns it back into the request it came from, for
persistence; `parse_dag(to_document(dag))` gives the same `Dag`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from gateway.dag import order

MAX_TASKS = 200
MAX_ARGUMENT_DEPTH = 64
TASK_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
TASK_ID_RULE = "1 to 64 letters, digits, '_' or '-', starting with a letter or '_'"

CONCURRENCY_RANGE = (1, 64)
TIMEOUT_MS_RANGE = (1, 600_000)


@dataclass(frozen=True)
class Task:
    """One call of a downstream tool. `depends_on` includes the dependencies its references imply."""

    id: str
    tool: str
    arguments: dict[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()


@dataclass(frozen=True)
class DagOptions:
    """How a DAG runs: tasks at once within a layer, each task's timeout, and whether to pause per layer."""

    max_concurrency: int = 8
    timeout_ms: int = 30_000
    per_layer_validation: bool = False


@dataclass(frozen=True)
class Dag:
    """A validated DAG: tasks in submission order, the intent it serves, and its options."""

    tasks: tuple[Task, ...]
    intent: str | None = None
    options: DagOptions = field(default_factory=DagOptions)
    observed: order.Layers | None = None
    """The layers as the calls were seen to run (a code run's trace: calls that overlapped share a layer), when
    they were not planned; they agree with `depends_on` (a dependency always sits in an earlier layer)."""

    @cached_property
    def layers(self) -> order.Layers:
        """Topological layers: layer 0 holds the tasks without dependencies, a task sits one layer above
        its deepest dependency, and ids within a layer keep submission order (or the `observed` layers)."""
        if self.observed is not None:
            return self.observed
        return order.layers([t.id for t in self.tasks], {t.id: t.depends_on for t in self.tasks})

    def task(self, task_id: str) -> Task:
        """The task with this id; KeyError if there is none."""
        return self._by_id[task_id]

    @cached_property
    def _by_id(self) -> dict[str, Task]:
        return {t.id: t for t in self.tasks}


def to_document(dag: Dag) -> dict[str, Any]:
    """`dag` as the JSON `execute_dag` arguments it came from (dependencies made explicit)."""
    document: dict[str, Any] = {
        "tasks": [
            {"id": t.id, "tool": t.tool, "arguments": t.arguments, "depends_on": list(t.depends_on)}
            for t in dag.tasks
        ],
        "options": {
            "max_concurrency": dag.options.max_concurrency,
            "timeout_ms": dag.options.timeout_ms,
            "per_layer_validation": dag.options.per_layer_validation,
        },
    }
    if dag.intent is not None:
        document["intent"] = dag.intent
    return document
