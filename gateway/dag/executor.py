"""The async DAG executor: advances a workflow layer by layer until it finishes or pauses, over injected callables.

`Executor.advance` runs from `state.next_layer` on. It stops at a pause: before a layer with a task that needs
approval (`approval_required`), or after every layer but the last under `per_layer_validation`
(`layer_complete`); a later `advance` continues where the returned state says. A checkpoint is saved after
every finished layer and at every pause, and inside a layer of several tasks each task's result as it finishes
(so a crash re-runs only the tasks still running), in a background task, so that the run does not wait for it;
`advance` returns only once its saves are done, so a returned state is durable (unless its save failed, which
is logged). Saves and episodic events outlive a cancelled caller: they run shielded, each bounded.

`Executor.abort` cancels a running `advance` of a workflow: its running tasks end `cancelled`, every task not
yet run is `skipped`, and the run ends `aborted`. Aborting a paused workflow is the caller's business.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from gateway.dag.model import Task
from gateway.dag.run import LayerRun, Record, Run, blocking_dependency, interrupted, run_layer, skipped
from gateway.dag.state import RunStatus, TaskResult, TaskStatus, WorkflowState
from gateway.errors import DatabaseUnavailableError, InvalidRequestError
from gateway.models import EpisodicEvent
from gateway.ports import Progress, ToolCall

logger = logging.getLogger(__name__)

CHECKPOINT_TIMEOUT_S = 15.0
"""The longest one checkpoint save may take before it is given up (and logged): a backstop, longer than the
database's own deadline, so that a save that meets a hung database is kept for later rather than cut off."""
EVENTS_TIMEOUT_S = 10.0
"""The same for one batch of episodic events."""
ABORT_SETTLE_S = 10.0
"""How long `abort` waits for the aborted run to record its final state."""
SAVE_QUEUE = 8
"""Checkpoints waiting to be saved before the run waits for them (it never should: saves are fast)."""
KEPT_TIMINGS = 1024
"""How many recent checkpoint durations `checkpoint_ms` keeps."""

Checkpoint = Callable[[WorkflowState], Awaitable[None]]
TaskSave = Callable[[WorkflowState, TaskResult], Awaitable[None]]
"""Saves one finished task's result of the workflow in `WorkflowState` (its state when the layer began)."""
Events = Callable[[Sequence[EpisodicEvent]], Awaitable[None]]


class Executor:
    """Runs workflow DAGs over a downstream `call`, saving a `checkpoint` at every layer boundary.

    `needs_approval` says which tasks wait for a user's yes; `schema_of` gives a tool's input schema (or None)
    to check each task's arguments once its references are substituted. Constructing one does no I/O.
    """

    def __init__(
        self,
        *,
        call: ToolCall,
        checkpoint: Checkpoint,
        task_saved: TaskSave | None = None,
        events: Events | None = None,
        needs_approval: Callable[[Task], bool] = lambda task: False,
        schema_of: Callable[[str], dict[str, Any] | None] = lambda tool: None,
    ) -> None:
        self._call = call
        self._checkpoint = checkpoint
        self._task_saved = task_saved
        self._events = events
        self._needs_approval = needs_approval
        self._schema_of = schema_of
        self._active: dict[str, Run] = {}
        self._timings: deque[float] = deque(maxlen=KEPT_TIMINGS)

    @property
    def checkpoint_ms(self) -> list[float]:
        """How long the recent successful checkpoint saves took, in milliseconds, oldest first."""
        return list(self._timings)

    async def advance(
        self, state: WorkflowState, *, approved: bool | None = None, progress: Progress | None = None
    ) -> WorkflowState:
        """Run `state` on until it finishes or pauses; `approved` answers a pending approval.

        With `progress`, each task's end is reported as (tasks with a result, all tasks, which task ended how).

        A final state comes back as it is. Raises `InvalidRequestError` if this workflow is already advancing.
        """
        if state.status.final:
            return state
        if state.workflow_id in self._active:
            raise InvalidRequestError(f"workflow {state.workflow_id} is already running", field="workflow_id")
        send, receive = anyio.create_memory_object_stream[Record](SAVE_QUEUE)
        run = self._active[state.workflow_id] = Run(
            state.workflow_id, send, self._events is not None, state.wall_ms, progress=progress
        )
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._persist, receive)
                with send:
                    final = await self._drive(state, approved, run)
        finally:
            del self._active[state.workflow_id]
            run.finished.set()
        return final

    async def abort(self, workflow_id: str) -> bool:
        """Cancel the running `advance` of `workflow_id` and wait (bounded) until it has recorded the abort.

        False when none is running (a paused workflow is not running).
        """
        run = self._active.get(workflow_id)
        if run is None:
            return False
        run.abort()
        with anyio.move_on_after(ABORT_SETTLE_S) as waited:
            await run.finished.wait()
        if waited.cancelled_caught:
            logger.warning("workflow %s did not settle within %g s of its abort", workflow_id, ABORT_SETTLE_S)
        return True

    async def _drive(self, state: WorkflowState, approved: bool | None, run: Run) -> WorkflowState:
        """The layer loop: every return goes through `run.save`, once per finished layer or pause."""
        if state.next_layer == 0 and not (state.results or state.pending_approval or state.approved_layers):
            run.note(
                "workflow_start",
                {"intent": state.dag.intent, "tasks": len(state.dag.tasks), "layers": len(state.dag.layers)},
            )
        state = self._decide(state.evolve(status=RunStatus.RUNNING), approved, run)
        while not state.done:
            waiting = () if run.aborted else self._waiting(state)
            if waiting:
                run.decision("approval_required", state.next_layer, waiting)
                return await run.save(state.evolve(status=RunStatus.APPROVAL_REQUIRED, pending_approval=waiting))
            state = await self._run_layer(state, run)
            if run.aborted:
                return await run.save(state.evolve(status=RunStatus.ABORTED))
            if state.done:
                break
            if state.dag.options.per_layer_validation:
                run.decision("layer_complete", state.next_layer - 1)
                return await run.save(state.evolve(status=RunStatus.LAYER_COMPLETE))
            await run.save(state)
        return await run.save(state.evolve(status=_outcome(state)))

    def _decide(self, state: WorkflowState, approved: bool | None, run: Run) -> WorkflowState:
        """Apply the user's answer to the approval the next layer waits for (if it waits for one)."""
        if approved is None:
            return state
        waiting = state.pending_approval or self._waiting(state)
        if not waiting:
            return state.evolve(pending_approval=())
        layer = state.next_layer
        if approved:
            run.decision("approved", layer, waiting)
            return state.evolve(approved_layers=state.approved_layers | {layer}, pending_approval=())
        run.decision("rejected", layer, waiting)
        rejected = {i: skipped(i, layer, "not approved") for i in waiting if i not in state.results}
        run.task_events(rejected, state.dag)
        return state.evolve(results={**state.results, **rejected}, pending_approval=())

    def _waiting(self, state: WorkflowState) -> tuple[str, ...]:
        """The next layer's tasks that need approval and would run (their dependencies ended ok)."""
        layer = state.next_layer
        if state.done or layer in state.approved_layers:
            return ()
        tasks = (state.dag.task(i) for i in state.dag.layers[layer] if i not in state.results)
        return tuple(t.id for t in tasks if self._asks_approval(t) and blocking_dependency(t, state.results) is None)

    def _asks_approval(self, task: Task) -> bool:
        try:
            return self._needs_approval(task)
        except Exception:
            # When in doubt, ask: a broken lookup must not let a destructive task run unapproved.
            logger.exception("cannot tell whether task %r (%s) needs approval; asking", task.id, task.tool)
            return True

    async def _run_layer(self, state: WorkflowState, run: Run) -> WorkflowState:
        """Run the next layer's tasks that have no result yet; on an abort, account for the ones cut off."""
        index, options = state.next_layer, state.dag.options
        done: dict[str, TaskResult] = {}
        tasks = [state.dag.task(i) for i in state.dag.layers[index] if i not in state.results]
        saving = self._task_saved is not None and len(tasks) > 1  # alone, its layer's checkpoint follows at once

        async def on_done(result: TaskResult) -> None:
            if saving:
                await run.outbox.send(Record(state, (), task=result))
            await run.report(len(state.results) + len(done), len(state.dag.tasks),
                             f"task {result.id} ({state.dag.task(result.id).tool}): {result.status.value}")

        layer = LayerRun(
            call=self._call,
            schema_of=self._schema_of,
            timeout_s=options.timeout_ms / 1000,
            limiter=anyio.CapacityLimiter(options.max_concurrency),
            layer=index,
            on_done=on_done if saving or run.progress is not None else None,
        )
        started: dict[str, float] = {}
        with anyio.CancelScope() as scope:
            run.scope = scope
            if run.aborted:
                scope.cancel()
            await run_layer(layer, tasks, state.results, done, started)
        run.scope = None
        if run.aborted:
            done.update(interrupted(state.dag, index, {**state.results, **done}, started, "aborted"))
        run.task_events(done, state.dag)
        next_layer = index if run.aborted else index + 1
        return state.evolve(results={**state.results, **done}, next_layer=next_layer)

    async def _persist(self, records: MemoryObjectReceiveStream[Record]) -> None:
        """Save each record in order until the run closes its outbox; a cancelled run still gets its saves."""
        with anyio.CancelScope(shield=True), records:
            async for record in records:
                if record.task is not None:
                    await self._save_task(record.state, record.task)
                    continue
                await self._save(record.state)
                if record.events and self._events is not None:
                    await self._record(self._events, record.events)

    async def _save(self, state: WorkflowState) -> None:
        began = time.perf_counter()
        try:
            with anyio.fail_after(CHECKPOINT_TIMEOUT_S):
                await self._checkpoint(state)
        except DatabaseUnavailableError as exc:  # the pool has logged the outage: one line per checkpoint
            logger.warning("checkpoint of workflow %s at layer %d not kept: %s", state.workflow_id, state.next_layer,
                           exc)
            return
        except Exception:
            # A lost checkpoint costs a restart its progress, not the run its result: log it and go on.
            logger.exception("checkpoint of workflow %s at layer %d failed", state.workflow_id, state.next_layer)
            return
        self._timings.append((time.perf_counter() - began) * 1000)

    async def _save_task(self, state: WorkflowState, result: TaskResult) -> None:
        assert self._task_saved is not None
        try:
            with anyio.fail_after(CHECKPOINT_TIMEOUT_S):
                await self._task_saved(state, result)
        except Exception:  # as for a checkpoint: a restart may run this task again, the run goes on
            logger.exception("saving task %s of workflow %s failed", result.id, state.workflow_id)

    async def _record(self, sink: Events, events: Sequence[EpisodicEvent]) -> None:
        try:
            with anyio.fail_after(EVENTS_TIMEOUT_S):
                await sink(events)
        except Exception:
            logger.exception("recording %d events of workflow %s failed", len(events), events[0].workflow_id)


def _outcome(state: WorkflowState) -> RunStatus:
    """COMPLETED when every task ended ok, else FAILED (its independent branches still ran)."""
    ok = (state.results.get(t.id) for t in state.dag.tasks)
    return RunStatus.COMPLETED if all(r is not None and r.status is TaskStatus.OK for r in ok) else RunStatus.FAILED
