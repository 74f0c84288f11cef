"""`execute_code`: the client's program run in the sandbox against the tools, and learned from like a DAG.

Inside the program every indexed tool is ``await call("server:tool", {...})``, a learned capability is
``await call("namespace:action", {...})``, and ``await search_tools("what to do")`` finds tools. Each call takes
the gateway's own path (arguments checked against the tool's schema, routing, the remaining time as its timeout,
telemetry); a tool that needs approval is refused (a program cannot be paused for it: use execute_dag). A tool's
error is raised in the program as ``RuntimeError`` (catchable), a bad argument as ``ValueError``.

Each run is recorded with its program, the hash of the program's normal form and the trace of its calls; the
trace is read as a workflow (`dag.trace`) and teaches the graph, the intents and reliability. A program whose
normal form ran successfully twice becomes a capability that runs the normal form with new parameters.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import anyio

from gateway.capabilities.code import CodeParseError, NormalCode, normalise
from gateway.config import CodeLimits
from gateway.dag import Task, check_resolved
from gateway.dag.state import RunStatus, WorkflowState
from gateway.dag.trace import Invocation, as_dag, results
from gateway.errors import CodeError, CodeLimitError, DagValidationError, GatewayError, InvalidRequestError
from gateway.models import EpisodicEvent, JsonObject, ToolOutput
from gateway.services.backlog import Backlog
from gateway.services.capability_calls import acting_as

logger = logging.getLogger(__name__)

MAX_CODE_CHARS = 100_000
RUN_PREFIX = "code_"
CALL = "call"
SEARCH = "search_tools"
SEARCH_LIMIT = 20
_TASK_PREFIX = re.compile(r"^task '[^']*': ")
_TRACE_KEEP = 200
"""Calls kept in a run's recorded trace (a run may make more, up to its limit)."""

CallTool = Callable[[str, dict[str, Any], float], Awaitable[ToolOutput]]
Search = Callable[[str, int], Awaitable[list[dict[str, Any]]]]
Learn = Callable[[WorkflowState, NormalCode | None], Awaitable[None]]


class Sandbox(Protocol):
    async def execute(self, code: str, *, functions: Mapping[str, Callable[..., Awaitable[Any]]],
                      limits: CodeLimits, inputs: Mapping[str, Any] | None = None) -> Any: ...


class CodeRunStore(Protocol):
    async def record_code_run(
        self, *, workflow_id: str, intent: str | None, structure: JsonObject, success: bool, execution_time_ms: int,
        error: str | None, code: str, code_hash: str, owner: str | None,
    ) -> None: ...

    async def record_events(self, events: Sequence[EpisodicEvent]) -> None: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeOutcome:
    """A finished run: its value and printed text, or the error that ended it; the calls it made."""

    run_id: str
    value: Any = None
    printed: str = ""
    error: CodeError | None = None
    invocations: tuple[Invocation, ...] = ()
    wall_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tooling:
    """What a program's host functions reach: the call path, its checks, and search."""

    call: CallTool
    schema_of: Callable[[str], dict[str, Any] | None]
    needs_approval: Callable[[str], bool]
    search: Search


class CodeService:
    """Runs programs in the sandbox and hands what they did to the learning path."""

    def __init__(self, *, sandbox: Sandbox, tooling: Tooling, store: CodeRunStore, backlog: Backlog,
                 limits: CodeLimits, teach: Callable[[str, Callable[[], Awaitable[None]]], None],
                 learn: Learn) -> None:
        """`teach(run_id, job)` runs a lesson in the background where `cap_list` waits for lessons; `learn` is
        the lesson itself."""
        self._sandbox = sandbox
        self._tooling = tooling
        self._store = store
        self._backlog = backlog
        self._limits = limits
        self._teach = teach
        self._learn = learn

    @property
    def limits(self) -> CodeLimits:
        return self._limits

    async def execute(self, code: Any, *, intent: str | None = None, timeout_ms: int | None = None,
                      owner: str | None = None) -> CodeOutcome:
        """Run `code` for `owner` (None over stdio), record it, and learn from it in the background."""
        text = _checked_code(code)
        limits = self._limits_for(timeout_ms)
        normal = _normal(text)
        with acting_as(owner):
            outcome = await self._run(text, limits=limits, inputs=None)
        await self._record(outcome, text, normal, intent=intent, owner=owner)
        return outcome

    async def run_program(self, code: str, inputs: Mapping[str, Any], timeout_s: float) -> ToolOutput:
        """Run a learned capability's program with `inputs` (its parameters), as a task's output; not recorded
        apart from the capability's own statistics."""
        limits = self._limits_for(max(1, round(timeout_s * 1000)))
        outcome = await self._run(code, limits=limits, inputs=inputs)
        if outcome.error is not None:
            return ToolOutput(is_error=True, text=str(outcome.error))
        return ToolOutput(is_error=False, text=_as_text(outcome.value), structured=outcome.value)

    def _limits_for(self, timeout_ms: int | None) -> CodeLimits:
        if timeout_ms is None:
            return self._limits
        if isinstance(timeout_ms, bool) or not isinstance(timeout_ms, int) or timeout_ms < 1:
            raise InvalidRequestError(f"timeout_ms must be a positive integer, got {timeout_ms!r}", field="timeout_ms")
        return _with_timeout(self._limits, min(timeout_ms, self._limits.timeout_ms))

    async def _run(self, code: str, *, limits: CodeLimits, inputs: Mapping[str, Any] | None) -> CodeOutcome:
        run = _Run(run_id=f"{RUN_PREFIX}{uuid.uuid4().hex[:16]}", limits=limits, tooling=self._tooling)
        error: CodeError | None = None
        value: Any = None
        printed = ""
        with anyio.CancelScope() as scope:
            run.scope = scope
            try:
                done = await self._sandbox.execute(code, functions=run.functions(), limits=limits, inputs=inputs)
                value, printed = done.value, done.printed
            except CodeError as exc:
                error = exc
        if run.limit is not None:
            error = run.limit
        return CodeOutcome(run_id=run.run_id, value=value, printed=printed, error=error,
                           invocations=tuple(sorted(run.invocations, key=lambda inv: inv.seq)),
                           wall_ms=run.elapsed_ms())

    async def _record(self, outcome: CodeOutcome, code: str, normal: NormalCode | None, *, intent: str | None,
                      owner: str | None) -> None:
        """The run, its events and (in the background) its lesson; an outage keeps the writes in the backlog."""
        state = _as_state(outcome, intent, owner)
        code_hash = normal.hash if normal is not None else hashlib.sha256(code.encode()).hexdigest()
        record = functools.partial(
            self._store.record_code_run, workflow_id=outcome.run_id, intent=intent,
            structure=_structure(outcome, intent), success=outcome.ok, execution_time_ms=round(outcome.wall_ms),
            error=None if outcome.error is None else str(outcome.error)[:2000], code=code, code_hash=code_hash,
            owner=owner,
        )
        events = _events(outcome)
        try:
            await self._backlog.attempt(f"recording the code run {outcome.run_id}", record)
            await self._backlog.attempt(f"recording the events of {outcome.run_id}",
                                        functools.partial(self._store.record_events, events))
        except GatewayError:
            logger.exception("recording the code run %s failed", outcome.run_id)
        self._teach(outcome.run_id, functools.partial(self._lesson, state, normal if outcome.ok else None))

    async def _lesson(self, state: WorkflowState, normal: NormalCode | None) -> None:
        try:
            await self._learn(state, normal)
        except GatewayError:
            logger.exception("learning from the code run %s failed", state.workflow_id)


@dataclass(slots=True, kw_only=True)
class _Run:
    """One run's host functions, its trace and its clock."""

    run_id: str
    limits: CodeLimits
    tooling: Tooling
    invocations: list[Invocation] = field(default_factory=list)
    calls: int = 0
    limit: CodeLimitError | None = None
    scope: anyio.CancelScope | None = None
    started: float = field(default_factory=time.perf_counter)

    def functions(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {CALL: self.call, SEARCH: self.search_tools}

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def _count(self) -> None:
        """One more host call; past max_tool_calls the run ends (the code cannot catch it)."""
        self.calls += 1
        if self.calls > self.limits.max_tool_calls:
            self.limit = CodeLimitError(f"the code made more than max_tool_calls ({self.limits.max_tool_calls}) "
                                        "tool calls", limit="max_tool_calls")
            if self.scope is not None:
                self.scope.cancel()
            raise RuntimeError(str(self.limit))

    async def call(self, tool: Any = None, arguments: Any = None) -> Any:
        """``call(tool_id, arguments)``: the tool's value (its structured content, else its text, parsed when it
        is JSON); its error raised as RuntimeError, bad arguments as ValueError."""
        self._count()
        seq = self.calls
        if not isinstance(tool, str) or not tool:
            raise TypeError("call(tool, arguments): tool must be a tool id such as 'server:tool', got "
                            f"{type(tool).__name__}")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            raise TypeError(f"call({tool!r}, arguments): arguments must be a dict, got {type(arguments).__name__}")
        self._check(tool, arguments)
        started_ms = self.elapsed_ms()
        remaining_s = max(0.001, self.limits.timeout_ms / 1000 - started_ms / 1000)
        try:
            output = await self.tooling.call(tool, arguments, remaining_s)
        except GatewayError as exc:
            output = ToolOutput(is_error=True, text=str(exc))
        value = None if output.is_error else _value(output)
        self._keep(Invocation(seq=seq, tool=tool, arguments=arguments, started_ms=started_ms,
                              duration_ms=self.elapsed_ms() - started_ms, ok=not output.is_error, output=value,
                              error=output.text[:500] if output.is_error else None))
        if output.is_error:
            raise RuntimeError(f"{tool} failed: {output.text}")
        return value

    async def search_tools(self, query: Any = None, limit: Any = 5) -> list[dict[str, Any]]:
        """``search_tools(query, limit=5)``: the best tools, each ``{tool_id, description, input_schema}``."""
        self._count()
        if not isinstance(query, str) or not query.strip():
            raise TypeError("search_tools(query, limit=5): query must be a non-empty string")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= SEARCH_LIMIT:
            raise ValueError(f"search_tools: limit must be an integer from 1 to {SEARCH_LIMIT}")
        try:
            return await self.tooling.search(query, limit)
        except GatewayError as exc:
            raise RuntimeError(f"search_tools failed: {exc}") from None

    def _check(self, tool: str, arguments: dict[str, Any]) -> None:
        if self.tooling.needs_approval(tool):
            raise PermissionError(f"{tool} needs approval before it runs, and a program cannot pause for it: "
                                  "run it as a task of execute_dag")
        try:
            check_resolved(Task(id=f"call{self.calls}", tool=tool, arguments=arguments), arguments,
                           self.tooling.schema_of(tool))
        except DagValidationError as exc:
            problems = "; ".join(_TASK_PREFIX.sub("", p.message) for p in exc.problems)
            raise ValueError(f"{tool}: {problems}") from None

    def _keep(self, invocation: Invocation) -> None:
        if len(self.invocations) < _TRACE_KEEP:
            self.invocations.append(invocation)


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


def _value(output: ToolOutput) -> Any:
    """What the code receives: the structured content (unwrapped when it is the ``{"result": value}`` the SDKs
    make of a tool returning a plain value), else the text, parsed when it is JSON."""
    if isinstance(output.structured, dict) and set(output.structured) == {"result"}:
        return output.structured["result"]
    if output.structured is not None:
        return output.structured
    try:
        return json.loads(output.text)
    except ValueError:
        return output.text


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
