"""Learning from executions: every finished workflow feeds the tool graph, which is rebuilt off the event loop.

Edges are counted in Postgres (one transaction per workflow, so concurrent gateways lose no update); the
in-memory graph is an immutable snapshot swapped in after a debounced rebuild, so a search never waits for it.
A rebuild follows this gateway's own learning, another gateway's on the same database (`changed_elsewhere`,
called on its notice), and in any case every `REFRESH_EVERY_S`, in case a notice was missed.

The `tool_prior` (which tools an intent needs, fitted on the remembered intents) is refitted in its own task, so
the graph never waits for it, once the memory has grown by `REFIT_SHARE` since the last fit. Each fit is stored,
so a restart reads it back and refits only when the rule says so.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Protocol

import anyio
import anyio.abc
import anyio.to_thread
import numpy as np

from gateway.dag.state import RunStatus, TaskStatus, WorkflowState
from gateway.errors import DatabaseError, DatabaseUnavailableError, GatewayError
from gateway.graph import EDGE_TYPE_WEIGHT, PROMOTE_AFTER, SOURCE_FACTOR, Edge, ToolGraph, build_graph, workflow_edges
from gateway.models import LOCAL_USER, StoredPrior
from gateway.ports import Embedder, Vector
from gateway.services import tool_prior
from gateway.services.ranking import reliability_factor
from gateway.services.tool_prior import ToolPrior

logger = logging.getLogger(__name__)

DEBOUNCE_S = 0.25
"""Bursts of finished workflows within this window cause one rebuild."""
REFRESH_EVERY_S = 60.0
"""The graph is rebuilt this often even when nothing was heard of (a notice from another gateway may be lost)."""
REFIT_SHARE = 0.05
"""The tool prior is refitted once the remembered intents grew (or shrank) by this share since its last fit."""
PRIOR_ROWS = 5000
"""The tool prior learns from at most this many of the most recent intents (bench_prior: 11-13 s for 2,527,
22 s for 5,000 with 1,000 tools)."""


class _EdgeRow(Protocol):
    @property
    def from_tool_id(self) -> str: ...
    @property
    def to_tool_id(self) -> str: ...
    @property
    def edge_type(self) -> str: ...
    @property
    def observed_count(self) -> int: ...
    @property
    def source(self) -> str: ...


class LearningPort(Protocol):
    async def record_run(self, *, edges: Sequence[tuple[str, str, str]], tools: Sequence[tuple[str, bool, float]],
                         promote_after: int, weights: dict[str, float], factors: dict[str, float]) -> None: ...

    async def edges(self) -> Sequence[_EdgeRow]: ...

    async def usage(self) -> dict[str, tuple[int, int]]: ...


class MemoryPort(Protocol):
    async def remember(self, *, intent: str, embedding: Vector, model_id: str, tools: Sequence[str],
                       edges: Sequence[tuple[str, str]], success: bool, owner: str = ...) -> None: ...

    async def count(self, *, model_id: str) -> int: ...

    async def training_rows(self, *, model_id: str, limit: int) -> tuple[np.ndarray, list[list[str]]]: ...

    async def stored_prior(self, *, model_id: str) -> StoredPrior | None: ...

    async def store_prior(self, prior: StoredPrior, *, model_id: str) -> None: ...


class LearningService:
    """Records what workflows did and keeps the current `ToolGraph` snapshot."""

    def __init__(
        self, *, store: LearningPort, limiter: anyio.CapacityLimiter,
        memory: MemoryPort | None = None, embedder: Embedder | None = None,
        refresh_every_s: float = REFRESH_EVERY_S,
    ) -> None:
        self._store = store
        self._refresh_every_s = refresh_every_s
        self._limiter = limiter
        self._memory = memory
        self._embedder = embedder
        self._graph = ToolGraph.empty()
        self._usage: dict[str, tuple[int, int]] = {}
        self._dirty = anyio.Event()
        self._prior: ToolPrior | None = None
        self._prior_rows = 0
        self._prior_due = anyio.Event()

    @property
    def graph(self) -> ToolGraph:
        return self._graph

    @property
    def tool_prior(self) -> ToolPrior | None:
        """The last fitted `ToolPrior` (None until there is a remembered intent to learn from)."""
        return self._prior

    def usage(self, tool_id: str) -> tuple[int, int]:
        """``(calls, successes)`` of a tool as of the last graph rebuild."""
        return self._usage.get(tool_id, (0, 0))

    def reliability(self, tool_id: str) -> float:
        calls, successes = self._usage.get(tool_id, (0, 0))
        return reliability_factor(calls, successes)

    async def learn(self, state: WorkflowState) -> None:
        """`record` a finished workflow, then `remember` its intent."""
        await self.record(state)
        await self.remember(state)

    async def record(self, state: WorkflowState) -> None:
        """Count the edges and tool outcomes of a finished workflow, then schedule a graph rebuild."""
        ok = {r.id for r in state.results.values() if r.status is TaskStatus.OK}
        tasks = [(t.id, t.tool, tuple(d for d in t.depends_on if d in ok)) for t in state.dag.tasks if t.id in ok]
        layers = [[t for t in layer if t in ok] for layer in state.dag.layers]
        tools = [(state.dag.task(r.id).tool, r.status is TaskStatus.OK, r.duration_ms)
                 for r in state.results.values() if r.status is not TaskStatus.SKIPPED]
        await self._store.record_run(edges=workflow_edges(tasks, layers), tools=tools, promote_after=PROMOTE_AFTER,
                                     weights=dict(EDGE_TYPE_WEIGHT), factors=dict(SOURCE_FACTOR))
        self._dirty.set()

    def changed_elsewhere(self) -> None:
        """Another gateway on the database has learned something: rebuild the graph soon (debounced)."""
        self._dirty.set()

    async def remember(self, state: WorkflowState) -> None:
        """Keep the intent with the tools and data-flow edges that served it, and who ran it (for DAG suggestion,
        which learns from a user's own and the public workflows only)."""
        intent = (state.dag.intent or "").strip()
        if not intent or self._memory is None or self._embedder is None:
            return
        vector = (await anyio.to_thread.run_sync(self._embedder.embed, [intent], limiter=self._limiter))[0]
        tool_of = {t.id: t.tool for t in state.dag.tasks}
        edges = [(tool_of[d], t.tool) for t in state.dag.tasks for d in t.depends_on if tool_of[d] != t.tool]
        await self._memory.remember(intent=intent, embedding=vector, model_id=self._embedder.model_id,
                                    tools=[t.tool for t in state.dag.tasks], edges=list(dict.fromkeys(edges)),
                                    success=state.status is RunStatus.COMPLETED, owner=state.owner or LOCAL_USER)

    async def refresh(self) -> ToolGraph:
        """Rebuild the graph now from the stored edges (off the event loop) and swap it in, then refit the tool
        prior if the memory has grown enough."""
        graph = await self._rebuild()
        await self.refit_prior()
        return graph

    async def refit_prior(self, *, force: bool = False) -> ToolPrior | None:
        """Refit the tool prior (off the event loop) when the remembered intents changed by `REFIT_SHARE`."""
        if self._memory is None or self._embedder is None:
            return None
        model_id = self._embedder.model_id
        count = await self._memory.count(model_id=model_id)
        if count == 0:  # nothing remembered (or all of it pruned): nothing to believe
            self._prior, self._prior_rows = None, 0
            return None
        if self._prior is None:  # at start: the fit a previous run kept, counted at the intents it was fitted on
            stored = await self._memory.stored_prior(model_id=model_id)
            if stored is not None and stored.weights.shape[0] == self._embedder.dimensions + 1:
                self._prior = ToolPrior(tools=stored.tools, weights=stored.weights, samples=stored.samples)
                self._prior_rows = stored.intents
        if not force and abs(count - self._prior_rows) < max(1.0, REFIT_SHARE * self._prior_rows):
            return self._prior
        vectors, tools = await self._memory.training_rows(model_id=model_id, limit=PRIOR_ROWS)
        previous = self._prior
        # A fit takes seconds: on cancellation (shutdown) the thread is left to finish alone, unwaited for.
        fitted = await anyio.to_thread.run_sync(lambda: tool_prior.fit(vectors, tools, previous=previous),
                                                abandon_on_cancel=True)
        self._prior, self._prior_rows = fitted, count
        if fitted is not None:
            logger.debug("tool prior fitted on %d intents (%d tools)", fitted.samples, len(fitted.tools))
            await self._keep(fitted, count, model_id)
        return fitted

    async def _keep(self, fitted: ToolPrior, count: int, model_id: str) -> None:
        """Store the fit for the next start; failing that, it is still used now and refitted at the next start."""
        assert self._memory is not None
        try:
            await self._memory.store_prior(
                StoredPrior(tools=fitted.tools, weights=fitted.weights, samples=fitted.samples, intents=count),
                model_id=model_id)
        except DatabaseError as exc:
            logger.warning("could not store the tool prior (%s); it is used, and refitted at the next start", exc)

    async def _rebuild(self) -> ToolGraph:
        rows = await self._store.edges()
        self._usage = await self._store.usage()
        edges = [Edge(source=r.from_tool_id, target=r.to_tool_id, edge_type=r.edge_type, origin=r.source,
                      count=r.observed_count) for r in rows]
        self._graph = await anyio.to_thread.run_sync(build_graph, (), edges, limiter=self._limiter)
        return self._graph

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Load the graph, then rebuild it after each burst of learning, or `refresh_every_s` after the last
        rebuild, and refit the tool prior beside it; runs until cancelled."""
        await self._rebuild()
        task_status.started()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._refit_when_due)
            self._prior_due.set()
            while True:
                with anyio.move_on_after(self._refresh_every_s):
                    await self._dirty.wait()
                await anyio.sleep(DEBOUNCE_S)
                self._dirty = anyio.Event()
                try:
                    await self._rebuild()
                except DatabaseUnavailableError as exc:  # the pool has logged the outage; no traceback each time
                    logger.warning("the tool graph is not rebuilt (%s); keeping the previous one", exc)
                except GatewayError:
                    logger.exception("rebuilding the tool graph failed; keeping the previous one")
                self._prior_due.set()

    async def _refit_when_due(self) -> None:
        """Refit the tool prior after graph rebuilds, one fit at a time; a rebuild during a fit asks for one more."""
        while True:
            await self._prior_due.wait()
            self._prior_due = anyio.Event()
            try:
                await self.refit_prior()
            except DatabaseUnavailableError as exc:
                logger.warning("the tool prior is not refitted (%s); keeping the previous one", exc)
            except Exception:  # a failed fit (database or numerics) must not end learning: keep the last prior
                logger.exception("refitting the tool prior failed; keeping the previous one")
