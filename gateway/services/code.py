"""`execute_code`: the client's program run in the sandbox against the tools, and learned from like a DAG.

Inside the program every indexed tool is ``await call("server:tool", {...})``, a learned capability is
``await call("namespace:action", {...})``, and ``await search_tools("what to do")`` finds tools (`code_host`).
A call of a tool that needs approval pauses the run as a DAG pauses: the client is answered
``approval_required`` and goes on with ``workflow {workflow_id: <run id>, action: continue, approved}``; the
run waits meanwhile, its clock stopped. A client that cancels the request ends the run.

Each finished run is recorded with its program, the hash of the program's normal form and the trace of its
calls; the trace is read as a workflow (`dag.trace`) and teaches the graph, the intents and reliability. A
program whose normal form ran successfully twice becomes a capability that runs the normal form with new
parameters (`run_program`).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import anyio.abc

from gateway.capabilities.code import CodeParseError, NormalCode, normalise
from gateway.config import CodeLimits
from gateway.dag.state import RunStatus, WorkflowState
from gateway.dag.trace import Invocation, as_dag, results
from gateway.errors import CodeError, CodeLimitError, GatewayError, InvalidRequestError
from gateway.models import EpisodicEvent, JsonObject, ToolOutput
from gateway.services.backlog import Backlog
from gateway.services.capability_calls import acting_as
from gateway.services.code_host import Approval, Module, RunHost, Tooling

logger = logging.getLogger(__name__)

MAX_CODE_CHARS = 100_000
RUN_PREFIX = "code_"
CODE_ACTIONS = ("continue", "abort", "status")
MAX_PAUSED = 4
"""Runs waiting for approval at once; half the sandbox's workers, so that code keeps running beside them."""
MAX_PAUSED_PER_USER = 2
Learn = Callable[[WorkflowState, NormalCode | None], Awaitable[None]]

__all__ = ["CODE_ACTIONS", "RUN_PREFIX", "CodeOutcome", "CodeService", "Tooling"]


class Sandbox(Protocol):
    async def execute(self, code: str, *, functions: Mapping[str, Callable[..., Awaitable[Any]]],
                      limits: CodeLimits, inputs: Mapping[str, Any] | None = None, own_clock: bool = True,
                      modules: Mapping[str, Module] | None = None) -> Any: ...


class CodeRunStore(Protocol):
    async def record_code_run(
        self, *, workflow_id: str, intent: str | None, structure: JsonObject, success: bool, execution_time_ms: int,
        error: str | None, code: str, code_hash: str, owner: str | None,
    ) -> None: ...

    async def record_events(self, events: Sequence[EpisodicEvent]) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeOutcome:
    """Where a run stands: finished (its value and printed text, or the error that ended it), waiting for
    approval of `pending` (tool and arguments), or still running; the calls it made so far."""

    run_id: str
    value: Any = None
    printed: str = ""
    error: CodeError | None = None
    invocations: tuple[Invocation, ...] = ()
    wall_ms: float = 0.0
    pending: tuple[str, dict[str, Any]] | None = None
    running: bool = False
    typing: str = ""
    """What the type checker found against the ``tools`` stubs (the code ran anyway)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def status(self) -> str:
        if self.pending is not None:
            return "approval_required"
        if self.running:
            return "running"
        return "completed" if self.ok else "failed"


@dataclass(slots=True, kw_only=True)
class _Live:
    """A run that may still pause: its host, its owner, and one waiter at a time."""

    host: RunHost
    owner: str | None
    lock: anyio.Lock


class CodeService:
    """Runs programs in the sandbox and hands what they did to the learning path."""

    def __init__(self, *, sandbox: Sandbox, tooling: Tooling, store: CodeRunStore, backlog: Backlog,
                 limits: CodeLimits, task_group: anyio.abc.TaskGroup,
                 teach: Callable[[str, Callable[[], Awaitable[None]]], None], learn: Learn) -> None:
        """Runs live in `task_group` (a paused run outlives the request that started it); `teach(run_id, job)`
        runs a lesson in the background where `cap_list` waits for lessons; `learn` is the lesson itself."""
        self._sandbox = sandbox
        self._tooling = tooling
        self._store = store
        self._backlog = backlog
        self._limits = limits
        self._tg = task_group
        self._teach = teach
        self._learn = learn
        self._live: dict[str, _Live] = {}

    @property
    def limits(self) -> CodeLimits:
        return self._limits

    async def execute(self, code: Any, *, intent: str | None = None, timeout_ms: int | None = None,
                      owner: str | None = None) -> CodeOutcome:
        """Run `code` for `owner` (None over stdio) until it finishes or waits for approval."""
        text = _checked_code(code)
        host = RunHost(run_id=f"{RUN_PREFIX}{uuid.uuid4().hex[:16]}", limits=self._limits_for(timeout_ms),
                       tooling=self._tooling, pausable=True, may_pause=functools.partial(self._may_pause, owner))
        live = _Live(host=host, owner=owner, lock=anyio.Lock())
        self._live[host.run_id] = live
        self._tg.start_soon(self._drive, host, text, intent, owner)
        async with live.lock:
            return await self._next(host)

    async def control(self, run_id: str, action: str, *, approved: bool | None,
                      owner: str | None = None) -> CodeOutcome:
        """`continue` (deciding the oldest call waiting for approval), `abort` or `status` of a live run of
        `owner`'s."""
        live = self._live.get(run_id)
        if live is None or live.owner != owner:
            raise InvalidRequestError(f"workflow_id: no code run {run_id!r} is waiting (unknown, or finished)",
                                      field="workflow_id")
        host = live.host
        if action not in CODE_ACTIONS:
            raise InvalidRequestError(f"a code run takes the actions {', '.join(CODE_ACTIONS)}, not {action!r}",
                                      field="action")
        if action == "status":
            return _paused(host, host.pending[0]) if host.pending else _so_far(host, running=True)
        async with live.lock:
            if action == "abort":
                host.abort()
            elif not host.pending:
                raise InvalidRequestError(f"code run {run_id} is not waiting for approval", field="action")
            elif approved is None:
                raise InvalidRequestError("approved must be true or false: the run waits for a decision on "
                                          f"{host.pending[0].tool}", field="approved")
            else:
                host.decide(approved)
            return await self._next(host)

    async def run_program(self, code: str, inputs: Mapping[str, Any], timeout_s: float) -> ToolOutput:
        """Run a learned capability's program with `inputs` (its parameters), as a task's output; not recorded
        apart from the capability's own statistics, and never paused (a tool needing approval is refused)."""
        host = RunHost(run_id=f"{RUN_PREFIX}{uuid.uuid4().hex[:16]}",
                       limits=self._limits_for(max(1, round(timeout_s * 1000))), tooling=self._tooling)
        outcome = await self._run(host, code, inputs=inputs)
        if outcome.error is not None:
            return ToolOutput(is_error=True, text=str(outcome.error))
        return ToolOutput(is_error=False, text=_as_text(outcome.value), structured=outcome.value)

    def _may_pause(self, owner: str | None) -> bool:
        """Few runs wait for approval at once (each holds a sandbox worker), fewer still of one user's."""
        waiting = [live.owner for live in self._live.values() if live.host.pending]
        return len(waiting) < MAX_PAUSED and waiting.count(owner) < MAX_PAUSED_PER_USER

    def _limits_for(self, timeout_ms: int | None) -> CodeLimits:
        if timeout_ms is None:
            return self._limits
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise InvalidRequestError(f"timeout_ms must be a positive integer, got {timeout_ms!r}", field="timeout_ms")
        return _with_timeout(self._limits, min(timeout_ms, self._limits.timeout_ms))

    async def _next(self, host: RunHost) -> CodeOutcome:
        """What the run does next: it ends, or a call waits for approval. A waiter cancelled (the client gave up
        on the request) ends the run."""
        try:
            event = await host.next_event()
        except anyio.get_cancelled_exc_class():
            host.abort()
            raise
        return _paused(host, event) if isinstance(event, Approval) else event

    async def _drive(self, host: RunHost, code: str, intent: str | None, owner: str | None) -> None:
        """Run to the end, hand the record and the lesson to the background, then tell the waiter (who does not
        wait for the database); whatever happens, the waiter hears of the end."""
        outcome = _so_far(host, error=CodeError("internal error in the gateway; see its log", kind="Internal"))
        try:
            with acting_as(owner):
                outcome = await self._run(host, code, inputs=None)
            self._teach(host.run_id, functools.partial(self._record, outcome, code, intent=intent, owner=owner))
        except Exception:
            logger.exception("code run %s failed unexpectedly", host.run_id)
        finally:
            self._live.pop(host.run_id, None)
            host.tell(outcome)

    async def _run(self, host: RunHost, code: str, *, inputs: Mapping[str, Any] | None) -> CodeOutcome:
        error: CodeError | None = None
        value: Any = None
        printed = typing = ""
        with host.clock:
            try:
                done = await self._sandbox.execute(code, functions=host.functions(), limits=host.limits,
                                                   inputs=inputs, own_clock=False, modules=host.modules(code))
                value, printed, typing = done.value, done.printed, done.typing
            except CodeError as exc:
                error, typing = exc, exc.typing
        if host.limit is not None:
            error = host.limit
        elif host.aborted:
            error = CodeError("the run was aborted", kind="Aborted")
        elif host.clock.cancelled_caught:
            error = CodeLimitError(f"the code ran longer than timeout_ms ({host.limits.timeout_ms} ms)",
                                   limit="timeout_ms")
        return _so_far(host, value=value, printed=printed, error=error, typing=typing)

    async def _record(self, outcome: CodeOutcome, code: str, *, intent: str | None, owner: str | None) -> None:
        """The run, its events, then its lesson (in the background, counted by `learned`); an outage keeps the
        writes in the backlog."""
        normal = _normal(code)
        state = _as_state(outcome, intent, owner)
        code_hash = normal.hash if normal is not None else hashlib.sha256(code.encode()).hexdigest()
        record = functools.partial(
            self._store.record_code_run, workflow_id=outcome.run_id, intent=intent,
            structure=_structure(outcome, intent), success=outcome.ok, execution_time_ms=round(outcome.wall_ms),
            error=None if outcome.error is None else str(outcome.error)[:2000], code=code, code_hash=code_hash,
            owner=owner,
        )
        try:
            await self._backlog.attempt(f"recording the code run {outcome.run_id}", record)
            await self._backlog.attempt(f"recording the events of {outcome.run_id}",
                                        functools.partial(self._store.record_events, _events(outcome)))
        except GatewayError:
            logger.exception("recording the code run %s failed", outcome.run_id)
        await self._lesson(state, normal if outcome.ok else None)

    async def _lesson(self, state: WorkflowState, normal: NormalCode | None) -> None:
        try:
            await self._learn(state, normal)
        except GatewayError:
            logger.exception("learning from the code run %s failed", state.workflow_id)


def _so_far(host: RunHost, **fields: Any) -> CodeOutcome:
    return CodeOutcome(run_id=host.run_id, invocations=tuple(sorted(host.invocations, key=lambda inv: inv.seq)),
                       wall_ms=host.elapsed_ms(), **fields)


def _paused(host: RunHost, approval: Approval) -> CodeOutcome:
    return _so_far(host, pending=(approval.tool, approval.arguments))


def _checked_code(code: Any) -> str:
    if not isinstance(code, str) or not code.strip():
        raise InvalidRequestError("code must be a non-empty string of Python", field="code")
    if len(code) > MAX_CODE_CHARS:
        raise InvalidRequestError(f"code must be at most {MAX_CODE_CHARS} characters, got {len(code)}", field="code")
    if "\x00" in code:
        raise InvalidRequestError("code must not contain NUL (U+0000) characters", field="code")
    return code


def _normal(code: str) -> NormalCode | None:
    """The program's normal form, or None when it does not parse (the sandbox then says why)."""
    try:
        return normalise(code)
    except CodeParseError:
        return None
    except RecursionError:  # absurdly nested code: learnable by no one, judged by the sandbox
        return None


def _with_timeout(limits: CodeLimits, timeout_ms: int) -> CodeLimits:
    return CodeLimits(timeout_ms=timeout_ms, max_memory_bytes=limits.max_memory_bytes,
                      max_output_bytes=limits.max_output_bytes, max_tool_calls=limits.max_tool_calls,
                      max_recursion_depth=limits.max_recursion_depth)


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _as_state(outcome: CodeOutcome, intent: str | None, owner: str | None) -> WorkflowState:
    dag = as_dag(outcome.invocations, intent)
    return WorkflowState(workflow_id=outcome.run_id, dag=dag, results=results(outcome.invocations, dag),
                         status=RunStatus.COMPLETED if outcome.ok else RunStatus.FAILED, wall_ms=outcome.wall_ms,
                         owner=owner, next_layer=len(dag.layers))


def _structure(outcome: CodeOutcome, intent: str | None) -> JsonObject:
    """``dag_structure`` of a code run, as the seed's data model draws it."""
    dag = as_dag(outcome.invocations, intent)
    layer_of = {task: n for n, layer in enumerate(dag.layers) for task in layer}
    return {
        "type": "code_execution",
        "tools_used": sorted({inv.tool for inv in outcome.invocations}),
        "intent_text": intent,
        "tool_invocations": [
            {"seq": inv.seq, "tool": inv.tool, "duration_ms": round(inv.duration_ms, 3), "ok": inv.ok,
             "error": inv.error, "layer": layer_of[task.id], "fed_by": list(task.depends_on)}
            for inv, task in zip(outcome.invocations, dag.tasks, strict=True)
        ],
    }


def _events(outcome: CodeOutcome) -> list[EpisodicEvent]:
    events = [
        EpisodicEvent(workflow_id=outcome.run_id, event_type="task_complete", task_id=inv.task_id,
                      data={"status": "ok" if inv.ok else "error", "duration_ms": round(inv.duration_ms, 3),
                            "error": inv.error, "tool": inv.tool, "seq": inv.seq})
        for inv in outcome.invocations
    ]
    status = "completed" if outcome.ok else "failed"
    data: JsonObject = {"status": status, "wall_ms": round(outcome.wall_ms, 3), "kind": "code"}
    if outcome.error is not None:
        data["error_kind"] = outcome.error.kind
        if isinstance(outcome.error, CodeLimitError):
            data["limit"] = outcome.error.limit
    events.append(EpisodicEvent(workflow_id=outcome.run_id, event_type="workflow_complete", data=data))
    return events
