"""`execute_dag` and `workflow`: submit, pause, approve, continue, abort, replan and resume workflows.

The executor runs the layers; this use case owns the life of a workflow around it: validation against the
known tools, the persisted DAG and checkpoints, one run at a time per workflow, the execution record, and
continuing the workflows a restart cut off.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import anyio
import anyio.abc

from gateway.dag import Dag, parse_dag, replan, to_document
from gateway.dag.executor import Executor
from gateway.dag.state import RunStatus, TaskResult, TaskStatus, WorkflowState
from gateway.errors import GatewayError, InvalidRequestError
from gateway.models import ToolDef
from gateway.ports import Cancelled, Progress, WorkflowStore
from gateway.services.backlog import Backlog
from gateway.services.capability_calls import acting_as
from gateway.services.inflight import InFlight

logger = logging.getLogger(__name__)

ACTIONS = ("continue", "abort", "replan", "status")
_LIVE_LIMIT = 1000
CANCEL_RECORD_S = 5.0
"""How long recording a workflow the client cancelled may hold up the cancellation."""


class WorkflowService:
    """Runs workflows and keeps each one's state, in memory while live and in Postgres for restarts."""

    def __init__(
        self,
        *,
        store: WorkflowStore,
        executor: Executor,
        schemas: Callable[[], Mapping[str, dict[str, Any] | None]],
        task_group: anyio.abc.TaskGroup,
        on_finished: Callable[[WorkflowState], Awaitable[None]] | None = None,
        resolve: Callable[[Iterable[str]], Awaitable[Mapping[str, Any]]] | None = None,
        backlog: Backlog | None = None,
    ) -> None:
        """With a `backlog`, a workflow submitted or finished while the database is unreachable runs in memory and
        its DAG, aborted state and run record are written once the database answers."""
        self._store = store
        self._executor = executor
        self._schemas = schemas
        self._resolve = resolve
        self._tg = task_group
        self._on_finished = on_finished
        self._backlog = backlog
        self._live: dict[str, WorkflowState] = {}
        self._locks: dict[str, anyio.Lock] = {}
        self._lessons = InFlight()

    async def execute(self, document: Any, *, owner: str | None = None, progress: Progress | None = None,
                      cancelled: Cancelled | None = None) -> WorkflowState:
        """Validate and run a DAG until it finishes or pauses, telling `progress` of each task's end.

        If the call is cancelled and `cancelled()` then says the client asked for it, the workflow ends aborted
        (a restart will not continue it); cancelled otherwise (the gateway stopping), it stays to be continued.
        """
        with acting_as(owner):
            dag = parse_dag(document, tool_schemas=await self._schemas_for(document))
            state = WorkflowState(workflow_id=f"wf_{uuid.uuid4().hex[:16]}", dag=dag, owner=owner)
            if persisted(dag):
                await self._write(f"saving the DAG of workflow {state.workflow_id}", functools.partial(
                    self._store.save_dag, state.workflow_id, to_document(dag), intent=dag.intent, owner=owner))
            return await self._advance(state, approved=None, progress=progress, cancelled=cancelled)

    async def control(
        self, workflow_id: str, action: str, *, approved: bool | None = None, tasks: Any = None,
        owner: str | None = None, progress: Progress | None = None, cancelled: Cancelled | None = None,
    ) -> WorkflowState:
        """Continue (approved or not), abort, replan or report a workflow. With an `owner` (an HTTP user), only
        that user's workflows are found: another's answers as an unknown one does."""
        with acting_as(owner):
            return await self._control(workflow_id, action, approved=approved, tasks=tasks, owner=owner,
                                       progress=progress, cancelled=cancelled)

    async def _control(
        self, workflow_id: str, action: str, *, approved: bool | None, tasks: Any, owner: str | None,
        progress: Progress | None, cancelled: Cancelled | None,
    ) -> WorkflowState:
        if owner is not None:
            await self._check_owner(workflow_id, owner)
        if action == "abort" and await self._executor.abort(workflow_id):
            async with self._lock(workflow_id):
                return await self._load(workflow_id)
        async with self._lock(workflow_id):
            state = await self._load(workflow_id)
            if action == "status":
                return state
            if state.status.final:
                raise InvalidRequestError(
                    f"workflow {workflow_id} is already {state.status.value}; nothing to {action}", field="action"
                )
            if action == "abort":
                return await self._finish(_aborted(state))
            if action == "replan":
                return await self._replan(state, tasks)
            return await self._continue(state, approved, progress, cancelled)

    async def resume_unfinished(self) -> int:
        """Continue, in the background, every workflow a restart cut off while it was running."""
        states = [WorkflowState.from_json(doc) for doc in await self._store.unfinished()]
        for state in states:
            logger.info("continuing workflow %s from layer %d", state.workflow_id, state.next_layer)
            self._tg.start_soon(self._resume, state)
        return len(states)

    async def _resume(self, state: WorkflowState) -> None:
        try:
            async with self._lock(state.workflow_id):
                with acting_as(state.owner):
                    await self._advance(state, approved=None)
        except GatewayError:
            logger.exception("continuing workflow %s failed", state.workflow_id)

    async def _continue(self, state: WorkflowState, approved: bool | None, progress: Progress | None,
                        cancelled: Cancelled | None) -> WorkflowState:
        if state.status is RunStatus.APPROVAL_REQUIRED and approved is None:
            raise InvalidRequestError(
                f"workflow {state.workflow_id} waits for approval of {', '.join(state.pending_approval)}: "
                "continue with approved: true or false",
                field="approved",
            )
        return await self._advance(state.evolve(status=RunStatus.RUNNING), approved=approved, progress=progress,
                                   cancelled=cancelled)

    async def _replan(self, state: WorkflowState, tasks: Any) -> WorkflowState:
        if tasks is None:
            raise InvalidRequestError("replan needs `tasks`: the tasks to add or replace", field="tasks")
        finished = {r.id for r in state.results.values()}
        kept = [{"tool": t.tool} for t in state.dag.tasks]
        schemas = await self._schemas_for({"tasks": kept + (tasks if isinstance(tasks, list) else [])})
        dag = replan(state.dag, finished, tasks, tool_schemas=schemas)
        state = state.evolve(dag=dag)
        await self._store.save_dag(state.workflow_id, to_document(dag), intent=dag.intent, owner=state.owner)
        await self._store.save_checkpoint(state.workflow_id, state.next_layer, state.to_json())
        return self._keep(state)

    async def _advance(self, state: WorkflowState, *, approved: bool | None, progress: Progress | None = None,
                       cancelled: Cancelled | None = None) -> WorkflowState:
        self._live[state.workflow_id] = state
        try:
            state = await self._executor.advance(state, approved=approved, progress=progress)
        except anyio.get_cancelled_exc_class():
            if cancelled is not None and cancelled():
                with anyio.CancelScope(shield=True), anyio.move_on_after(CANCEL_RECORD_S):
                    await self._cancelled_by_client(state)
            raise
        return await self._finish(state) if state.status.final else self._keep(state)

    async def _cancelled_by_client(self, started: WorkflowState) -> None:
        """End aborted, from its last checkpoint (the executor has saved every layer it finished by now), else
        from where this run `started`. A plain single call stores nothing and is never continued: left alone."""
        if not persisted(started.dag):
            return
        try:
            doc = await self._store.latest_checkpoint(started.workflow_id)
            state = WorkflowState.from_json(doc) if doc is not None else started
            logger.info("workflow %s: the client cancelled it at layer %d; aborted", state.workflow_id,
                        state.next_layer)
            await self._finish(_aborted(state, "cancelled by the client"))
        except GatewayError:
            logger.exception("recording workflow %s as cancelled by the client failed", started.workflow_id)

    async def _finish(self, state: WorkflowState) -> WorkflowState:
        failed = [r for r in state.results.values() if r.status is not TaskStatus.OK]
        error = "; ".join(f"{r.id}: {r.error}" for r in failed)[:2000] or None
        record = functools.partial(
            self._store.record_execution, workflow_id=state.workflow_id, intent=state.dag.intent,
            dag=to_document(state.dag), success=state.status is RunStatus.COMPLETED,
            execution_time_ms=round(state.wall_ms), error=error,
        )
        try:
            await self._write(f"recording the run of workflow {state.workflow_id}", record)
        except GatewayError:
            logger.exception("recording workflow %s failed", state.workflow_id)
        if persisted(state.dag) and state.status is RunStatus.ABORTED:
            await self._write(f"checkpointing workflow {state.workflow_id}", functools.partial(
                self._store.save_checkpoint, state.workflow_id, state.next_layer, state.to_json()))
        self._keep(state)
        if self._on_finished is not None:
            self._lessons.start(self._tg, state.workflow_id, functools.partial(self._learn, state))
        return state

    async def _write(self, what: str, write: Callable[[], Awaitable[object]]) -> None:
        """Write now, or, with a backlog and the database unreachable, once it answers again."""
        if self._backlog is None:
            await write()
        else:
            await self._backlog.attempt(what, write)

    def teach(self, name: str, lesson: Callable[[], Awaitable[None]]) -> None:
        """Learn `lesson` (of a run that is not a workflow here: a code run) in the background, counted by
        `learned` like a workflow's."""
        self._lessons.start(self._tg, name, lesson)

    async def learned(self, timeout_s: float) -> list[str]:
        """Wait at most `timeout_s` until what the finished workflows teach is learned; the ids of the workflows
        whose lessons are still being learned."""
        return await self._lessons.wait(timeout_s)

    async def _learn(self, state: WorkflowState) -> None:
        assert self._on_finished is not None
        try:
            await self._on_finished(state)
        except GatewayError:
            logger.exception("learning from workflow %s failed", state.workflow_id)

    def _keep(self, state: WorkflowState) -> WorkflowState:
        """Keep the latest state in memory; past `_LIVE_LIMIT` the oldest final ones go (their checkpoint stays)."""
        self._live[state.workflow_id] = state
        if len(self._live) > _LIVE_LIMIT:
            for key in [k for k, v in self._live.items() if v.status.final][: _LIVE_LIMIT // 10]:
                del self._live[key]
                self._locks.pop(key, None)
        return state

    async def _load(self, workflow_id: str) -> WorkflowState:
        if (state := self._live.get(workflow_id)) is not None:
            return state
        doc = await self._store.latest_checkpoint(workflow_id)
        if doc is None:
            raise InvalidRequestError(f"no workflow {workflow_id!r} (unknown, or expired)", field="workflow_id")
        return WorkflowState.from_json(doc)

    async def _check_owner(self, workflow_id: str, owner: str) -> None:
        state = self._live.get(workflow_id) or await self._load(workflow_id)
        if state.owner != owner:
            raise InvalidRequestError(f"no workflow {workflow_id!r} (unknown, or expired)", field="workflow_id")

    def _lock(self, workflow_id: str) -> anyio.Lock:
        return self._locks.setdefault(workflow_id, anyio.Lock())

    async def _schemas_for(self, document: Any) -> Mapping[str, Any]:
        """The known tools' schemas, plus those of the other names the document's tasks call that `resolve`
        knows (capabilities)."""
        known = self._schemas()
        names = [name for name in _called(document) if name not in known]
        if not names or self._resolve is None:
            return known
        return {**known, **await self._resolve(names)}


def _called(document: Any) -> list[str]:
    """The `tool` strings of a raw document's tasks (whatever else is wrong with it is `parse_dag`'s to say)."""
    tasks = document.get("tasks") if isinstance(document, dict) else None
    if not isinstance(tasks, list):
        return []
    return [t["tool"] for t in tasks if isinstance(t, dict) and isinstance(t.get("tool"), str)]


def _aborted(state: WorkflowState, reason: str = "aborted") -> WorkflowState:
    """A workflow aborted between layers: every task not yet run is skipped, for `reason`."""
    results = dict(state.results)
    for layer, ids in enumerate(state.dag.layers):
        for task_id in ids:
            results.setdefault(task_id, TaskResult(id=task_id, status=TaskStatus.SKIPPED, layer=layer, error=reason))
    return state.evolve(status=RunStatus.ABORTED, results=results)


def needs_approval(tool: ToolDef | None, approval: frozenset[str]) -> bool:
    """A destructive tool (annotation ``destructiveHint: true``) or one listed in the config's `approval`."""
    if tool is None:
        return False
    return tool.tool_id in approval or bool((tool.annotations or {}).get("destructiveHint"))


def summary(state: WorkflowState) -> dict[str, Any]:
    """The structured content of a workflow answer."""
    wall, total = state.wall_ms, state.sum_task_ms
    return {
        "workflow_id": state.workflow_id,
        "status": state.status.value,
        "layers": len(state.dag.layers),
        "next_layer": state.next_layer,
        "wall_ms": round(wall, 1),
        "sum_task_ms": round(total, 1),
        "speedup": round(total / wall, 2) if wall > 0 else 1.0,
        "pending_approval": list(state.pending_approval),
        "tasks": {r.id: {k: v for k, v in r.to_json().items() if k != "id"} for r in _ordered(state)},
    }


def _ordered(state: WorkflowState) -> list[TaskResult]:
    order = {t.id: i for i, t in enumerate(state.dag.tasks)}
    return sorted(state.results.values(), key=lambda r: order.get(r.id, len(order)))


def persisted(dag: Dag) -> bool:
    """Whether a workflow's DAG and checkpoints are stored: not for a plain single call, which stays cheap."""
    return len(dag.tasks) > 1 or dag.options.per_layer_validation
