"""Run a client's Python in pydantic-monty, the sandbox built for code that models write.

The code never runs in the gateway's interpreter: monty interprets it in a pool of worker subprocesses that
have no file system, network, environment, subprocess or host imports (only its own small standard library:
``asyncio``, ``json``, ``re``, ``math``, ...). What the code may reach of the gateway is the host functions it
is given (`functions`): each call pauses the code, runs the coroutine in the gateway, and resumes the code with
its value or its exception. Concurrent calls (``asyncio.gather``) run concurrently.

Every limit ends the run with a `CodeLimitError` naming the setting: wall time (the host's clock, tool calls
included), the sandbox's heap, what the code prints and returns, the recursion depth; the number of tool calls
is the caller's to count. A crashed worker is replaced by the pool; the gateway never shares a worker between
two runs at once. The pool is owned by one task (`run`) for its whole life.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc
from pydantic_monty import (
    AsyncMonty,
    CollectStreams,
    ExternalModule,
    MontyCrashedError,
    MontyError,
    MontyRuntimeError,
    MontyTypingError,
    ResourceLimits,
)

from gateway.config import CodeLimits
from gateway.errors import CodeError, CodeLimitError

logger = logging.getLogger(__name__)

HostFunction = Callable[..., Awaitable[Any]]
WORKERS = 8
"""Worker processes at most (~7 MB each); one is started with the pool, the others on demand. A run holds one
while it waits for approval, and a program calling a capability learned from code holds one per level."""
CHECKOUT_WAIT_S = 10.0
"""How long a run waits for a free worker before it is refused."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CodeRun:
    """What a finished run gave: its last expression's value (as JSON data), what it printed, and what the type
    checker found against the stubs of the modules it imported (the code runs anyway: a finding may be wrong)."""

    value: Any
    printed: str
    typing: str = ""


Module = tuple[Mapping[str, "HostFunction"], str]
"""A host module: its functions by name and their ``.pyi`` stubs."""


class MontySandbox:
    """A pool of monty workers, started by `run` and used by `execute` from any task."""

    def __init__(self, *, workers: int = WORKERS) -> None:
        self._workers = workers
        self._pool: AsyncMonty | None = None
        self._ready = anyio.Event()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the pool until cancelled; its workers are stopped, bounded, on the way out."""
        pool = AsyncMonty(min_processes=1, max_processes=self._workers, checkout_timeout=CHECKOUT_WAIT_S)
        try:
            async with pool:
                self._pool = pool
                self._ready.set()
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._pool = None

    async def execute(self, code: str, *, functions: Mapping[str, HostFunction], limits: CodeLimits,
                      inputs: Mapping[str, Any] | None = None, own_clock: bool = True,
                      modules: Mapping[str, Module] | None = None) -> CodeRun:
        """Run `code` with `functions` callable, `modules` importable and `inputs` bound as globals; a failure of
        the code is a `CodeError`, a limit hit a `CodeLimitError`. Code that imports one of `modules` is
        type-checked against its stubs first. Without `own_clock` the caller bounds the wall time (a run paused
        for a person's approval does not spend it); the worker's own execution clock still applies."""
        pool = await self._started()
        for _ in range(2):
            try:
                return await self._attempt(pool, code, functions=functions, limits=limits, inputs=inputs,
                                           own_clock=own_clock, modules=modules)
            except _DeadBeforeHost:
                logger.info("a sandbox worker was dead before the code reached the host; running it on another")
        raise CodeError("the sandbox worker running the code crashed, and another one too (both were replaced): the "
                        "code exhausts a resource, the stack say", kind="Crashed")

    async def _attempt(self, pool: AsyncMonty, code: str, *, functions: Mapping[str, HostFunction],
                       limits: CodeLimits, inputs: Mapping[str, Any] | None, own_clock: bool,
                       modules: Mapping[str, Module] | None) -> CodeRun:
        """One run on one worker. A worker that crashes before the code made any host call (it died while idle,
        say) raises `_DeadBeforeHost`: nothing outside the sandbox happened, so the run may go again."""
        printed = CollectStreams(max_bytes=limits.max_output_bytes)
        held = _HostCalls()
        external = {name: ExternalModule(held.wrap(members), stubs=stub) for name, (members, stub) in
                    (modules or {}).items()}
        checked_out = False
        typing = ""
        try:
            with anyio.fail_after(limits.timeout_ms / 1000 if own_clock else None):
                async with pool.checkout(limits=_worker_limits(limits), external_modules=external,
                                         type_check=bool(external), type_check_format="concise") as session:
                    checked_out = True
                    feed = functools.partial(session.feed_run, code, inputs=dict(inputs or {}),
                                             external_lookup=held.wrap(functions), print_callback=printed)
                    try:
                        value = await feed()
                    except MontyTypingError as exc:
                        typing = exc.display().strip()
                        value = await feed(skip_type_check=True)
        except TimeoutError:
            if not checked_out:
                raise CodeError(f"no sandbox worker was free within {CHECKOUT_WAIT_S:.0f} s (all {self._workers} "
                                "run code); try again", kind="Busy") from None
            raise CodeLimitError(f"the code ran longer than timeout_ms ({limits.timeout_ms} ms)",
                                 limit="timeout_ms") from None
        except MontyCrashedError as exc:
            if not held.calls and not printed.output:
                raise _DeadBeforeHost from exc
            raise _translated(exc, limits) from None
        except MontyError as exc:
            error = _translated(exc, limits)
            error.typing = typing
            raise error from None
        finally:
            held.cancel()
        text = "".join(chunk for _, chunk in printed.output)
        return CodeRun(value=_json_value(value, limits), printed=text, typing=typing)

    async def _started(self) -> AsyncMonty:
        with anyio.fail_after(CHECKOUT_WAIT_S):
            await self._ready.wait()
        if self._pool is None:
            raise CodeError("the sandbox is stopping", kind="Unavailable")
        return self._pool


class _DeadBeforeHost(Exception):
    """The worker crashed before the code called the host."""


class _HostCalls:
    """One run's host functions, each call in a cancel scope that the run's end cancels: monty awaits a host
    coroutine as a task of its own, which would outlive a run ended by a limit or a cancel while it waited."""

    def __init__(self) -> None:
        self._scopes: set[anyio.CancelScope] = set()
        self.calls = 0

    def wrap(self, functions: Mapping[str, HostFunction]) -> dict[str, HostFunction]:
        return {name: self._held(function) for name, function in functions.items()}

    def cancel(self) -> None:
        for scope in list(self._scopes):
            scope.cancel()

    def _held(self, function: HostFunction) -> HostFunction:
        async def held(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            with anyio.CancelScope() as scope:
                self._scopes.add(scope)
                try:
                    return await function(*args, **kwargs)
                finally:
                    self._scopes.discard(scope)
            raise RuntimeError("the run ended before this call did")

        return held


def _worker_limits(limits: CodeLimits) -> ResourceLimits:
    """monty's own limits: its execution clock backs the host's wall clock; suspensions allow every tool call."""
    return ResourceLimits(
        max_feed_duration_secs=limits.timeout_ms / 1000,
        max_memory=limits.max_memory_bytes,
        max_recursion_depth=limits.max_recursion_depth,
        max_suspensions=limits.max_tool_calls * 2 + 100,
        max_total_sleep_secs=limits.timeout_ms / 1000,
    )


def _translated(exc: MontyError, limits: CodeLimits) -> CodeError:
    """A sandbox failure as the client should read it: a limit names its setting, anything else the code's own
    exception and line."""
    if isinstance(exc, MontyCrashedError):
        logger.warning("a sandbox worker crashed: %s", exc)
        return CodeError("the sandbox worker running the code crashed (it was replaced); the code may have "
                         "exhausted a resource", kind="Crashed")
    kind = _kind(exc)
    message = _message(exc)
    if kind == "TimeoutError" and ("time limit exceeded" in message or "sleep limit exceeded" in message):
        return CodeLimitError(f"the code ran longer than timeout_ms ({limits.timeout_ms} ms)", limit="timeout_ms")
    if kind == "MemoryError" and ("memory limit exceeded" in message or "exceeded its memory limit" in message):
        return _memory_error(message, limits)
    if kind == "RecursionError":
        return CodeLimitError(f"recursion deeper than max_recursion_depth ({limits.max_recursion_depth})",
                              limit="max_recursion_depth")
    if kind == "RuntimeError" and "suspension" in message.lower():
        return CodeLimitError(f"more than max_tool_calls ({limits.max_tool_calls}) calls to the host",
                              limit="max_tool_calls")
    return CodeError(message, kind=kind)


def _memory_error(message: str, limits: CodeLimits) -> CodeLimitError:
    """The printed output's cap and the heap's cap both say "memory limit exceeded"; the bound tells them apart."""
    if f"> {limits.max_output_bytes} bytes" in message:
        return CodeLimitError(f"the code printed more than max_output_bytes ({limits.max_output_bytes} bytes)",
                              limit="max_output_bytes")
    return CodeLimitError(f"the code used more memory than max_memory_bytes ({limits.max_memory_bytes} bytes)",
                          limit="max_memory_bytes")


def _kind(exc: MontyError) -> str:
    if isinstance(exc, MontyRuntimeError):
        return exc.display(format="type-msg").split(":", 1)[0].strip() or "RuntimeError"
    return {"MontySyntaxError": "SyntaxError", "MontyTypingError": "TypeError"}.get(type(exc).__name__, "Error")


def _message(exc: MontyError) -> str:
    display = getattr(exc, "display", None)
    return str(display(format="traceback")).strip() if display is not None else str(exc).strip()


def _json_value(value: Any, limits: CodeLimits) -> Any:
    """`value` as JSON data (tuples and sets become lists, bytes and other objects their text); larger than
    max_output_bytes once serialised is a `CodeLimitError`."""
    data = _plain(value)
    size = len(json.dumps(data, ensure_ascii=False).encode())
    if size > limits.max_output_bytes:
        raise CodeLimitError(f"the code's result is {size} bytes, over max_output_bytes ({limits.max_output_bytes})",
                             limit="max_output_bytes")
    return data


def _plain(value: Any, depth: int = 0) -> Any:
    if depth > 100:
        return "..."
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(k): _plain(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v, depth + 1) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
