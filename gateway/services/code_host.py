"""One code run's host side: the functions the program calls, the trace of its calls, its clock, its pauses.

A program's tool call is checked (arguments against the tool's schema), may wait for a person's approval, then
takes the gateway's call path. The run's wall clock is a cancel scope whose deadline is lifted while a call
waits for approval and set again to what was left: a person's thinking is not the program's time. Past
`max_tool_calls` the run is cancelled, so a program cannot catch the limit and go on.

A run that may pause (`pausable`) tells whoever waits on it what happens next through `next_event`: the end of
the run, or a call waiting for approval (several may wait, in the order they asked).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from gateway.capabilities.code import module_members
from gateway.catalog.stubs import MODULE, function_names, stubs
from gateway.config import CodeLimits
from gateway.dag import Task, check_resolved
from gateway.dag.trace import Invocation
from gateway.errors import CodeLimitError, DagValidationError, GatewayError
from gateway.models import ToolDef, ToolOutput

CALL = "call"
SEARCH = "search_tools"
SEARCH_LIMIT = 20
APPROVAL_WAIT_S = 600.0
"""How long a paused run waits for a decision before the call is refused."""
TRACE_KEEP = 200
"""Calls kept in a run's recorded trace (a run may make more, up to its limit)."""
_TASK_PREFIX = re.compile(r"^task '[^']*': ")

CallTool = Callable[[str, dict[str, Any], float], Awaitable[ToolOutput]]
Search = Callable[[str, int], Awaitable[list[dict[str, Any]]]]
Module = tuple[Mapping[str, Callable[..., Awaitable[Any]]], str]


@dataclass(frozen=True, slots=True, kw_only=True)
class Tooling:
    """What a program's host functions reach: the call path, its checks, search, and the known tools (for the
    typed ``tools`` module)."""

    call: CallTool
    schema_of: Callable[[str], dict[str, Any] | None]
    needs_approval: Callable[[str], bool]
    search: Search
    tools: Callable[[], Mapping[str, ToolDef]] = dict


@dataclass(slots=True)
class Approval:
    """A call waiting for a person: its tool and arguments, and the decision once made."""

    tool: str
    arguments: dict[str, Any]
    decided: anyio.Event = field(default_factory=anyio.Event)
    approved: bool = False


@dataclass(slots=True, kw_only=True)
class RunHost:
    """One run's host functions, trace, clock and pauses."""

    run_id: str
    limits: CodeLimits
    tooling: Tooling
    pausable: bool = False
    may_pause: Callable[[], bool] = lambda: True
    """Whether another call may wait for approval now (each waiting run holds a sandbox worker)."""
    invocations: list[Invocation] = field(default_factory=list)
    calls: int = 0
    limit: CodeLimitError | None = None
    aborted: bool = False
    pending: list[Approval] = field(default_factory=list)
    clock: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    started: float = field(default_factory=time.perf_counter)
    _send: MemoryObjectSendStream[Any] | None = None
    _receive: MemoryObjectReceiveStream[Any] | None = None

    def __post_init__(self) -> None:
        self.clock.deadline = anyio.current_time() + self.limits.timeout_ms / 1000
        if self.pausable:
            self._send, self._receive = anyio.create_memory_object_stream[Any](math.inf)

    def functions(self) -> dict[str, Callable[..., Awaitable[Any]]]:
        return {CALL: self.call, SEARCH: self.search_tools}

    def modules(self, code: str) -> dict[str, Module]:
        """The ``tools`` module, when the code imports it: a typed function per known tool the code names (its
        other names are left out, so the type checker and the run name them as unknown)."""
        wanted = module_members(code, MODULE)
        if not wanted:
            return {}
        known = self.tooling.tools()
        names = function_names(known)
        chosen = {name: known[names[name]] for name in wanted if name in names}
        functions = {name: self._tool_function(tool.tool_id) for name, tool in chosen.items()}
        return {MODULE: (functions, stubs(chosen))}

    def _tool_function(self, tool_id: str) -> Callable[..., Awaitable[Any]]:
        async def function(**arguments: Any) -> Any:
            return await self.call(tool_id, {k: v for k, v in arguments.items() if v is not None})

        return function

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    def tell(self, event: Any) -> None:
        """Hand `event` (an approval asked for, or the finished outcome) to whoever waits on the run."""
        if self._send is not None:
            self._send.send_nowait(event)

    async def next_event(self) -> Any:
        assert self._receive is not None, "only a pausable run has events"
        return await self._receive.receive()

    def decide(self, approved: bool) -> Approval:
        """Answer the oldest call waiting for approval."""
        approval = self.pending.pop(0)
        approval.approved = approved
        approval.decided.set()
        return approval

    def abort(self) -> None:
        """End the run now; calls waiting for approval are refused."""
        self.aborted = True
        for approval in self.pending:
            approval.decided.set()
        self.clock.cancel()

    async def call(self, tool: Any = None, arguments: Any = None) -> Any:
        """``call(tool_id, arguments)``: the tool's value (its structured content, else its text, parsed when it
        is JSON); its error raised as RuntimeError, bad arguments as ValueError, a refusal as PermissionError."""
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
        if self.tooling.needs_approval(tool):
            await self._approved(tool, arguments)
        started_ms = self.elapsed_ms()
        remaining_s = max(0.001, self.clock.deadline - anyio.current_time())
        try:
            output = await self.tooling.call(tool, arguments, remaining_s)
        except GatewayError as exc:
            output = ToolOutput(is_error=True, text=str(exc))
        value = None if output.is_error else tool_value(output)
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

    def _count(self) -> None:
        """One more host call; past max_tool_calls the run ends (the code cannot catch it)."""
        self.calls += 1
        if self.calls > self.limits.max_tool_calls:
            self.limit = CodeLimitError(f"the code made more than max_tool_calls ({self.limits.max_tool_calls}) "
                                        "tool calls", limit="max_tool_calls")
            self.clock.cancel()
            raise RuntimeError(str(self.limit))

    def _check(self, tool: str, arguments: dict[str, Any]) -> None:
        try:
            check_resolved(Task(id=f"call{self.calls}", tool=tool, arguments=arguments), arguments,
                           self.tooling.schema_of(tool))
        except DagValidationError as exc:
            problems = "; ".join(_TASK_PREFIX.sub("", p.message) for p in exc.problems)
            raise ValueError(f"{tool}: {problems}") from None

    async def _approved(self, tool: str, arguments: dict[str, Any]) -> None:
        """Wait for a person's decision on this call (the clock stopped meanwhile); PermissionError if refused."""
        if not self.pausable:
            raise PermissionError(f"{tool} needs approval before it runs, and this run cannot pause for it "
                                  "(a capability's program): run it from execute_code or execute_dag")
        if not self.pending and not self.may_pause():
            raise PermissionError(f"{tool} needs approval, and too many runs already wait for one: decide those "
                                  "(workflow continue or abort) and run this again")
        approval = Approval(tool, arguments)
        self.pending.append(approval)
        remaining = self.clock.deadline - anyio.current_time()
        self.clock.deadline = math.inf
        self.tell(approval)
        try:
            with anyio.move_on_after(APPROVAL_WAIT_S):
                await approval.decided.wait()
        finally:
            self.clock.deadline = anyio.current_time() + remaining
        if approval in self.pending:
            self.pending.remove(approval)
            raise PermissionError(f"{tool} was not approved within {APPROVAL_WAIT_S:.0f} s")
        if not approval.approved:
            raise PermissionError(f"{tool} was not approved")

    def _keep(self, invocation: Invocation) -> None:
        if len(self.invocations) < TRACE_KEEP:
            self.invocations.append(invocation)


def tool_value(output: ToolOutput) -> Any:
    """What the code receives: the structured content (unwrapped when it is the ``{"result": value}`` the SDKs
    make of a tool returning a plain value, or a one-key object that only repeats the text, as the filesystem
    server's ``{"content": text}``), else the text, parsed when it is JSON."""
    structured = output.structured
    if isinstance(structured, dict) and len(structured) == 1:
        (key, value), = structured.items()
        if key == "result" or value == output.text:
            return value
    if output.structured is not None:
        return output.structured
    try:
        return json.loads(output.text)
    except ValueError:
        return output.text
