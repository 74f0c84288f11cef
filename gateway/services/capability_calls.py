"""Capabilities called as tasks: resolve the name, answer from the result cache or run the DAG as a sub-workflow.

A task whose `tool` names a capability (display name ``namespace:action``, FQDN, id, or an old name) runs the
capability's canonical DAG with the task's arguments as its parameters (checked against its parameters schema
when the workflow is validated, and once more when its references are substituted). The sub-workflow runs
without checkpoints of its own, under the calling task's timeout; its answer is the output of its last layer
(the one task's output, or ``{task id: output}`` when the last layer has several). Every run counts in the
capability's statistics. A cacheable capability (all its tools read-only) answers a repeated call with the same
parameters from its cache within the TTL, marked `cached`; nothing else is ever served from cache.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol

from gateway.capabilities import document_hash, instantiate
from gateway.dag import Dag, as_text, parse_dag
from gateway.dag.state import RunStatus, TaskStatus, WorkflowState
from gateway.errors import DagValidationError, GatewayError
from gateway.models import Capability, ToolOutput

logger = logging.getLogger(__name__)

MAX_DEPTH = 4
"""How deep capabilities may call capabilities (a merge could otherwise make one call itself)."""
ANY_OBJECT: dict[str, Any] = {"type": "object"}

_depth: contextvars.ContextVar[int] = contextvars.ContextVar("capability_depth", default=0)
acting_user: contextvars.ContextVar[str | None] = contextvars.ContextVar("acting_user", default=None)
"""The user a workflow runs for (its owner; None over stdio): the capabilities it may call are theirs or shared.
`WorkflowService` sets it around each run; the tasks of the run inherit it."""


@contextlib.contextmanager
def acting_as(user: str | None) -> Iterator[None]:
    """Run the block (and the tasks it starts) for `user`."""
    token = acting_user.set(user)
    try:
        yield
    finally:
        acting_user.reset(token)


class CallStore(Protocol):
    async def get(self, ref: str, *, user: str | None = ...) -> Capability | None: ...

    async def count_run(self, pattern_hash: str, *, success: bool, duration_ms: float) -> None: ...

    async def cached(self, capability_id: uuid.UUID, params_hash: str) -> Any | None: ...

    async def store_cache(self, capability_id: uuid.UUID, params_hash: str, result: Any, ttl_ms: int) -> None: ...


RunDag = Callable[[Dag], Awaitable[WorkflowState]]
RunProgram = Callable[[str, Mapping[str, Any], float], Awaitable[ToolOutput]]


class CapabilityCalls:
    """Resolves capability names for workflows and runs capabilities as tasks.

    `schemas` gives the known tools' input schemas (for validating the sub-workflow); `run_dag` runs a DAG to
    its end. Rows resolved by `schemas_for` are remembered by the name they were asked under, so that the
    synchronous checks of a run (approval, argument schemas) can see them.
    """

    def __init__(self, *, store: CallStore, schemas: Callable[[], Mapping[str, Any]], run_dag: RunDag) -> None:
        self.run_program: RunProgram | None = None
        """Runs a program learned as a capability (set once code mode is wired; None: such capabilities fail)."""
        self._store = store
        self._schemas = schemas
        self._run_dag = run_dag
        self._rows: dict[tuple[str | None, str], Capability] = {}

    def known(self, name: str) -> Capability | None:
        """The capability `name` resolved to (for the acting user) when a workflow naming it was last validated."""
        return self._rows.get((acting_user.get(), name))

    def with_stable_names(self, state: WorkflowState, name: Callable[[Capability], str]) -> WorkflowState:
        """`state` with each capability task's tool replaced by `name(capability)` (e.g. its id or graph node),
        so that what is learned from it does not depend on which of the capability's names the caller used."""
        renamed = {t.tool: name(row) for t in state.dag.tasks
                   if (row := self._rows.get((state.owner, t.tool))) is not None}
        if not renamed:
            return state
        tasks = tuple(dataclasses.replace(t, tool=renamed.get(t.tool, t.tool)) for t in state.dag.tasks)
        return state.evolve(dag=dataclasses.replace(state.dag, tasks=tasks))

    async def schemas_for(self, names: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The parameters schema of each name in `names` that resolves to a capability (others are left out)."""
        found: dict[str, dict[str, Any]] = {}
        user = acting_user.get()
        for name in dict.fromkeys(names):
            row = await self._store.get(name, user=user)
            if row is None:
                self._rows.pop((user, name), None)
                continue
            self._rows[(user, name)] = row
            found[name] = row.parameters_schema or ANY_OBJECT
        return found

    async def call(self, name: str, arguments: Mapping[str, Any], timeout_s: float) -> ToolOutput:
        """Run the capability `name` with `arguments` as its parameters (a failure is an error output)."""
        row = await self._store.get(name, user=acting_user.get())
        if row is None:
            return _error(f"{name!r} is neither a known tool nor a capability (was its server or capability removed?)")
        if _depth.get() >= MAX_DEPTH:
            return _error(f"capability {row.display_name} nests capabilities deeper than {MAX_DEPTH}")
        params_hash = document_hash({"parameters": dict(arguments)})
        if _cacheable(row) and (hit := await self._cached(row, params_hash)) is not None:
            return hit
        begin = time.perf_counter()
        output = await self._run(row, arguments, timeout_s)
        await self._count(row, success=not output.is_error, duration_ms=(time.perf_counter() - begin) * 1000)
        if _cacheable(row) and not output.is_error:
            await self._keep(row, params_hash, output)
        return output

    async def _run(self, row: Capability, arguments: Mapping[str, Any], timeout_s: float) -> ToolOutput:
        if "code" in row.document:
            return await self._program(row, arguments, timeout_s)
        try:
            dag = await self._sub_dag(row, arguments, timeout_s)
        except (ValueError, DagValidationError) as exc:
            return _error(f"capability {row.display_name} cannot run with these arguments: {exc}")
        token = _depth.set(_depth.get() + 1)
        try:
            state = await self._run_dag(dag)
        finally:
            _depth.reset(token)
        return _answer(row, state)

    async def _program(self, row: Capability, arguments: Mapping[str, Any], timeout_s: float) -> ToolOutput:
        """A capability learned from code: its normal form run in the sandbox with the parameters as inputs (the
        observed values fill those not given)."""
        if self.run_program is None:
            return _error(f"capability {row.display_name} runs code, and code mode is not available here")
        properties = (row.parameters_schema or {}).get("properties") or {}
        unknown = sorted(set(arguments) - set(properties))
        if unknown:
            return _error(f"capability {row.display_name} has no parameter(s) {', '.join(unknown)}; expected some "
                          f"of {', '.join(properties) or 'none'}")
        inputs = {name: arguments.get(name, spec.get("default")) for name, spec in properties.items()}
        token = _depth.set(_depth.get() + 1)
        try:
            return await self.run_program(str(row.document["code"]), inputs, timeout_s)
        finally:
            _depth.reset(token)

    async def _sub_dag(self, row: Capability, arguments: Mapping[str, Any], timeout_s: float) -> Dag:
        document = instantiate(row.document, arguments, parameters_schema=row.parameters_schema)
        document["options"] = {"timeout_ms": max(1, round(timeout_s * 1000))}
        schemas = dict(self._schemas())
        inner = [t["tool"] for t in document["tasks"] if t["tool"] not in schemas]
        schemas.update(await self.schemas_for(inner))
        return parse_dag(document, tool_schemas=schemas)

    async def _cached(self, row: Capability, params_hash: str) -> ToolOutput | None:
        try:
            value = await self._store.cached(row.id, params_hash)
        except GatewayError:
            logger.warning("reading the cache of %s failed; running it", row.display_name, exc_info=True)
            return None
        if value is None:
            return None
        return ToolOutput(is_error=False, text=as_text(value["output"]), structured=value["output"], cached=True)

    async def _keep(self, row: Capability, params_hash: str, output: ToolOutput) -> None:
        ttl_ms = int(row.cache_config.get("ttl_ms", 0))
        try:
            await self._store.store_cache(row.id, params_hash, {"output": output.structured}, ttl_ms)
        except GatewayError:
            logger.warning("caching a result of %s failed", row.display_name, exc_info=True)

    async def _count(self, row: Capability, *, success: bool, duration_ms: float) -> None:
        try:
            await self._store.count_run(row.pattern_hash, success=success, duration_ms=duration_ms)
        except GatewayError:
            logger.warning("counting a run of %s failed", row.display_name, exc_info=True)


def _cacheable(row: Capability) -> bool:
    return bool(row.cache_config.get("cacheable")) and int(row.cache_config.get("ttl_ms", 0)) > 0


def _answer(row: Capability, state: WorkflowState) -> ToolOutput:
    """The last layer's output, or an error naming the tasks that failed."""
    if state.status is not RunStatus.COMPLETED:
        failed = [f"{r.id} ({state.dag.task(r.id).tool}): {r.error}" for r in state.results.values()
                  if r.status is not TaskStatus.OK]
        return _error(f"capability {row.display_name} {state.status.value}: " + "; ".join(failed))
    last = state.dag.layers[-1]
    value = state.results[last[0]].output if len(last) == 1 else {i: state.results[i].output for i in last}
    return ToolOutput(is_error=False, text=as_text(value), structured=value)


def _error(message: str) -> ToolOutput:
    return ToolOutput(is_error=True, text=message)
