"""One run of a workflow (a call of `Executor.advance`): its bookkeeping, and its layers' tasks run at once.

A `Run` keeps the clock, the abort handle and the episodic events of one `advance`, and hands each state to
checkpoint, with the events leading to it, to the background writer through its outbox.

`run_layer` runs a layer's tasks concurrently under a limiter, each bounded by the DAG's timeout. A task never
raises out of it: a failed reference, arguments that miss the tool's schema, a downstream error, a timeout and
even a bug in the injected `call` all end as that task's `TaskResult`. Only cancellation (an abort, or the
caller going away) leaves a task without one; `interrupted` accounts for those afterwards.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from gateway.dag.arguments import check_resolved
from gateway.dag.model import Dag, Task
from gateway.dag.references import output_value, resolve_arguments
from gateway.dag.state import TaskResult, TaskStatus, WorkflowState
from gateway.errors import CallTimeoutError, DagValidationError, DownstreamError, OutputReferenceError
from gateway.models import EpisodicEvent, JsonObject
from gateway.ports import Progress, ToolCall

logger = logging.getLogger(__name__)

TIMEOUT_GRACE_S = 0.5
"""How long past its own timeout a `call` may take to give up before the task is cut off here."""

_FAILED_AS = {
    TaskStatus.ERROR: "failed",
    TaskStatus.TIMEOUT: "timed out",
    TaskStatus.SKIPPED: "was skipped",
    TaskStatus.CANCELLED: "was cancelled",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class LayerRun:
    """What the tasks of one layer share: the downstream, the schemas, the limits and the layer's index."""

    call: ToolCall
    schema_of: Callable[[str], Any]
    limiter: anyio.CapacityLimiter
    timeout_s: float
    layer: int
    on_done: Callable[[TaskResult], Awaitable[None]] | None = None
    """Told of each task's result as the task ends (the run's progress report)."""


@dataclass(frozen=True, slots=True)
class Record:
    """What the background writer persists, in order: a state to checkpoint, then the events leading to it; or,
    with `task`, only that finished task's result (of `state`'s workflow, inside its layer)."""

    state: WorkflowState
    events: tuple[EpisodicEvent, ...]
    task: TaskResult | None = None


@dataclass(slots=True)
class Run:
    """One call of `advance`: its clock, its outbox, the events not yet sent, and its abort handle."""

    workflow_id: str
    outbox: MemoryObjectSendStream[Record]
    recording: bool
    base_wall_ms: float
    started: float = field(default_factory=time.perf_counter)
    events: list[EpisodicEvent] = field(default_factory=list)
    aborted: bool = False
    scope: anyio.CancelScope | None = None
    finished: anyio.Event = field(default_factory=anyio.Event)
    progress: Progress | None = None

    async def report(self, done: int, total: int, message: str) -> None:
        """Tell the caller who asked for progress (a courtesy: a report that fails is logged, the run goes on)."""
        if self.progress is None:
            return
        try:
            await self.progress(done, total, message)
        except Exception:
            logger.debug("workflow %s: a progress report was not delivered", self.workflow_id, exc_info=True)

    def abort(self) -> None:
        """Cancel the layer running now, and let no later layer start."""
        self.aborted = True
        if self.scope is not None:
            self.scope.cancel()

    def note(self, event_type: str, data: JsonObject, task_id: str | None = None) -> None:
        """Keep an episodic event for the next record (only when the executor has an events sink)."""
        if self.recording:
            self.events.append(
                EpisodicEvent(workflow_id=self.workflow_id, event_type=event_type, data=data, task_id=task_id)
            )

    def decision(self, kind: str, layer: int, tasks: Sequence[str] = ()) -> None:
        self.note("decision", {"kind": kind, "layer": layer, "tasks": list(tasks)})

    def task_events(self, results: Mapping[str, TaskResult], dag: Dag) -> None:
        """One `task_complete` event per result."""
        for r in results.values():
            data = {
                "status": r.status.value,
                "duration_ms": round(r.duration_ms, 3),
                "error": r.error,
                "layer": r.layer,
                "tool": dag.task(r.id).tool,
            }
            self.note("task_complete", data, task_id=r.id)

    async def save(self, state: WorkflowState) -> WorkflowState:
        """Stamp `state` with the time spent so far and queue its checkpoint with the pending events."""
        state = state.evolve(wall_ms=self.base_wall_ms + (time.perf_counter() - self.started) * 1000)
        if state.status.final:
            self.note(
                "workflow_complete",
                {
                    "status": state.status.value,
                    "wall_ms": round(state.wall_ms, 3),
                    "sum_task_ms": round(state.sum_task_ms, 3),
                },
            )
        record, self.events = Record(state, tuple(self.events)), []
        await self.outbox.send(record)
        return state


async def run_layer(
    run: LayerRun,
    tasks: list[Task],
    prior: Mapping[str, TaskResult],
    done: dict[str, TaskResult],
    started: dict[str, float],
) -> None:
    """Run `tasks` concurrently, putting each one's result into `done` as it ends.

    `prior` holds the results of earlier layers; `started` gets the `perf_counter` at which each task got
    past the limiter, so that an interrupted run can tell running tasks from waiting ones.
    """
    outputs = {r.id: r.output for r in prior.values() if r.status is TaskStatus.OK}
    async with anyio.create_task_group() as tg:
        for task in tasks:
            blocker = blocking_dependency(task, prior)
            if blocker is not None:
                done[task.id] = skipped(task.id, run.layer, blocker)
            else:
                tg.start_soon(_run_task, run, task, outputs, done, started)


def blocking_dependency(task: Task, results: Mapping[str, TaskResult]) -> str | None:
    """Why `task` cannot run: its first dependency that did not end ok, said as a sentence; else None."""
    for dep in task.depends_on:
        result = results.get(dep)
        if result is None:
            return f"skipped: dependency '{dep}' has no result"
        if result.status is not TaskStatus.OK:
            return f"skipped: dependency '{dep}' {_FAILED_AS[result.status]}"
    return None


def skipped(task_id: str, layer: int, reason: str) -> TaskResult:
    """A task that did not run, and why."""
    return TaskResult(id=task_id, status=TaskStatus.SKIPPED, layer=layer, error=reason)


def interrupted(
    dag: Dag, layer: int, results: Mapping[str, TaskResult], started: Mapping[str, float], reason: str
) -> dict[str, TaskResult]:
    """Results for the tasks an abort cut off: running ones cancelled, all not yet run skipped."""
    now = time.perf_counter()
    added: dict[str, TaskResult] = {}
    for index, ids in enumerate(dag.layers[layer:], layer):
        for task_id in ids:
            if task_id in results:
                continue
            if task_id in started:
                duration = (now - started[task_id]) * 1000
                added[task_id] = TaskResult(
                    id=task_id, status=TaskStatus.CANCELLED, layer=index, error=reason, duration_ms=duration
                )
            else:
                added[task_id] = skipped(task_id, index, reason)
    return added


async def _run_task(
    run: LayerRun, task: Task, outputs: Mapping[str, Any], done: dict[str, TaskResult], started: dict[str, float]
) -> None:
    async with run.limiter:
        begin = started[task.id] = time.perf_counter()
        status, output, error, cached = await _attempt(run, task, outputs)
        duration = (time.perf_counter() - begin) * 1000
        result = done[task.id] = TaskResult(
            id=task.id, status=status, layer=run.layer, output=output, error=error, duration_ms=duration,
            cached=cached,
        )
    if run.on_done is not None:
        await run.on_done(result)


async def _attempt(
    run: LayerRun, task: Task, outputs: Mapping[str, Any]
) -> tuple[TaskStatus, Any, str | None, bool]:
    """Substitute, check and call: the task's status, output value, error message and whether it was cached."""
    try:
        arguments = resolve_arguments(task, outputs)
        check_resolved(task, arguments, run.schema_of(task.tool))
        with anyio.fail_after(run.timeout_s + TIMEOUT_GRACE_S):
            answer = await run.call(task.tool, arguments, run.timeout_s)
    except (OutputReferenceError, DagValidationError) as exc:
        return TaskStatus.ERROR, None, str(exc), False
    except CallTimeoutError as exc:
        return TaskStatus.TIMEOUT, None, str(exc), False
    except DownstreamError as exc:
        return TaskStatus.ERROR, None, str(exc), False
    except TimeoutError:
        return TaskStatus.TIMEOUT, None, f"{task.tool} did not answer within {run.timeout_s:g} s", False
    except Exception as exc:
        # The run goes on; a bug in the injected call must still show up with its traceback.
        logger.exception("task %r (%s) failed unexpectedly", task.id, task.tool)
        return TaskStatus.ERROR, None, f"internal error: {type(exc).__name__}: {exc}", False
    if answer.is_error:
        return TaskStatus.ERROR, None, answer.text or f"{task.tool} reported an error without a message", False
    return TaskStatus.OK, output_value(answer.structured, answer.text), None, answer.cached
