"""Capabilities learned from workflows: register each finished run, match them to an intent, list, rename, merge.

A workflow's canonical form (tasks renamed in topological order, literal arguments lifted into parameters)
is hashed; the first successful run of a form creates a capability named after what it does (see
`gateway.capabilities.naming`: ``time:get_current_time_then_convert_time``, ``workflow:<intent words>``), a name
it keeps until a user renames it and that no listed downstream tool or other capability has or had; later runs
update its counts, and `contains` edges link it to its tools in the learned graph. A capability matches an
intent through the intents it served: the best similarity among them, weighed by the capability's share of the
nearest past intents, times its reliability: the lowest success rate among the capability, its tools and the
capabilities it calls; one below `RELIABILITY_FLOOR` is never offered.
"""

from __future__ import annotations

import hashlib
import math
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.to_thread

from gateway.capabilities import (
    Canonical,
    canonicalize,
    check_action,
    check_namespace,
    display_name,
    document_hash,
    glob_to_like,
)
from gateway.capabilities.code import NormalCode
from gateway.capabilities.naming import generated_action, generated_actions, generated_namespace
from gateway.dag.state import RunStatus, WorkflowState
from gateway.errors import InvalidRequestError
from gateway.graph import EDGE_TYPE_WEIGHT, PROMOTE_AFTER, SOURCE_FACTOR, ToolGraph
from gateway.graph.view import GraphView, graph_view
from gateway.models import CAPABILITY_PREFIX, LOCAL_USER, Capability, JsonObject, ToolDef
from gateway.ports import Embedder, Vector

MAX_LIST = 500
VISIBILITIES = ("private", "project", "org", "public")
RELIABILITY_FLOOR = 0.5
"""A capability whose transitive success rate is below this is hidden from search and suggestion."""
MATCH_POOL = 20
"""How many nearest past intents (of any capability) are read to match a query."""
MIN_TOOL_CALLS = 3
"""Calls of a tool before its own success rate counts in a capability's reliability."""
_NESTING = 3
CODE_PROMOTE_AFTER = 2
"""Successful runs of one program's normal form (other literals allowed) before it becomes a capability."""


@dataclass(frozen=True, slots=True)
class CapabilityMatch:
    """A capability offered for a query: its row, the intent similarity and its transitive reliability."""

    row: Capability
    similarity: float
    reliability: float
    support: float = 1.0
    """The capability's share of the nearest past intents' votes (each weighs its similarity to the 4th)."""

    @property
    def score(self) -> float:
        """Similarity x the square root of support x reliability. Measured on UltraTool (bench_capabilities):
        the right capability comes first for 48% of the queries, against 40% by similarity alone (22% when a
        capability kept only its first intent); at 0.7, 80% of those above are right."""
        return self.similarity * math.sqrt(self.support) * self.reliability


class CapabilityPort(Protocol):
    async def record(
        self, *, pattern_hash: str, document: JsonObject, tools: Sequence[str], parameters_schema: JsonObject | None,
        embedding: Vector, success: bool, duration_ms: float, namespace: str, action: str, cacheable: bool,
        org: str = ..., project: str = ..., intent_key: str | None = ..., created_by: str = ...,
        alternatives: Sequence[str] = ..., runs: int = ...,
    ) -> Capability | None: ...

    async def get(self, ref: str, *, user: str | None = ...) -> Capability | None: ...

    async def list(self, *, like: str | None = ..., unnamed_only: bool = ..., limit: int = ...,
                   offset: int = ..., user: str | None = ...) -> tuple[list[Capability], int]: ...

    async def rename(self, capability_id: uuid.UUID, *, namespace: str, action: str, description: str | None = ...,
                     tags: Sequence[str] | None = ..., embedding: Vector | None = ...,
                     visibility: str | None = ...) -> Capability: ...

    async def merge(self, source_id: uuid.UUID, target_id: uuid.UUID, *, prefer_source_code: bool) -> Capability: ...

    async def search(self, embedding: Vector, *, limit: int,
                     user: str | None = ...) -> Sequence[tuple[Capability, float]]: ...


class EdgePort(Protocol):
    async def record_run(self, *, edges: Sequence[tuple[str, str, str]], tools: Sequence[tuple[str, bool, float]],
                         promote_after: int, weights: dict[str, float], factors: dict[str, float]) -> None: ...


class CapabilityService:
    """Registers workflows as capabilities and manages them."""

    def __init__(self, *, store: CapabilityPort, edges: EdgePort, embedder: Embedder,
                 limiter: anyio.CapacityLimiter, tool_usage: Callable[[str], tuple[int, int]] = lambda t: (0, 0),
                 ) -> None:
        self._store = store
        self._edges = edges
        self._embedder = embedder
        self._limiter = limiter
        self._tool_usage = tool_usage

    async def register(self, state: WorkflowState, tools: Mapping[str, ToolDef]) -> Capability | None:
        """Count a finished run of a multi-task workflow; its capability (None for a failed unknown one)."""
        if not state.status.final or len(state.dag.tasks) < 2 or state.status is RunStatus.ABORTED:
            return None
        canonical = canonicalize(state.dag, {t: (d.input_schema if d else None) for t, d in _defs(state, tools)})
        text = " ".join((state.dag.intent or "").split()) or " | ".join(
            tools[t].embed_text for t in canonical.tools if t in tools)
        vector = (await anyio.to_thread.run_sync(self._embedder.embed, [text or "workflow"], limiter=self._limiter))[0]
        pattern_hash = _owned_hash(canonical.hash, state.owner)
        namespace, actions = await self._names(canonical, state.dag.intent, pattern_hash, tools)
        row = await self._store.record(
            pattern_hash=pattern_hash, document=canonical.document, tools=list(canonical.tools),
            parameters_schema=canonical.parameters_schema, embedding=vector,
            success=state.status is RunStatus.COMPLETED, duration_ms=state.wall_ms,
            namespace=namespace, action=actions[0], alternatives=actions[1:],
            cacheable=all(t in tools and (tools[t].annotations or {}).get("readOnlyHint") for t in canonical.tools),
            intent_key=hashlib.sha256(text.encode()).hexdigest()[:32], created_by=state.owner or LOCAL_USER,
        )
        if row is not None and row.usage_count == 1:
            contains = [(row.node_id, tool, "contains") for tool in canonical.tools]
            await self._edges.record_run(edges=contains, tools=(), promote_after=PROMOTE_AFTER,
                                         weights=dict(EDGE_TYPE_WEIGHT), factors=dict(SOURCE_FACTOR))
        return row

    async def register_code(self, state: WorkflowState, normal: NormalCode, successes: int,
                            tools: Mapping[str, ToolDef]) -> Capability | None:
        """Count a successful run of a program (`state` its trace) whose normal form has `successes` successful
        runs so far; from the second on, the program is a capability that runs its normal form."""
        if successes < CODE_PROMOTE_AFTER or state.status is not RunStatus.COMPLETED or not state.dag.tasks:
            return None
        used = sorted({t.tool for t in state.dag.tasks})
        text = " ".join((state.dag.intent or "").split()) or " | ".join(
            tools[t].embed_text for t in used if t in tools)
        vector = (await anyio.to_thread.run_sync(self._embedder.embed, [text or "program"], limiter=self._limiter))[0]
        pattern_hash = _owned_hash(document_hash({"code_hash": normal.hash}), state.owner)
        named = [await self._tool_name(t.tool) for t in state.dag.tasks]
        action = generated_action(state.dag.intent, named, literals=normal.defaults.values())
        actions = generated_actions(action, pattern_hash)
        namespace = generated_namespace(named)
        actions = [a for a in actions[:-1] if display_name(namespace, a) not in tools] + actions[-1:]
        row = await self._store.record(
            pattern_hash=pattern_hash, document={"code": normal.code, "code_hash": normal.hash}, tools=used,
            parameters_schema=normal.parameters_schema, embedding=vector, success=True, duration_ms=state.wall_ms,
            namespace=namespace, action=actions[0], alternatives=actions[1:], cacheable=False,
            intent_key=hashlib.sha256(text.encode()).hexdigest()[:32], created_by=state.owner or LOCAL_USER,
            runs=successes,
        )
        if row is not None and successes == CODE_PROMOTE_AFTER:  # the run that made it a capability
            contains = [(row.node_id, tool, "contains") for tool in used]
            await self._edges.record_run(edges=contains, tools=(), promote_after=PROMOTE_AFTER,
                                         weights=dict(EDGE_TYPE_WEIGHT), factors=dict(SOURCE_FACTOR))
        return row

    async def _names(self, canonical: Canonical, intent: str | None, pattern_hash: str,
                     tools: Mapping[str, ToolDef]) -> tuple[str, list[str]]:
        """The namespace and the actions to offer, in order, for a capability of `canonical`: made from `intent`
        or the tools (a capability called as a task by its display name), none of them a downstream tool's id
        (the tool would answer that name)."""
        named = [await self._tool_name(task["tool"]) for task in canonical.document["tasks"]]
        namespace = generated_namespace(named)
        action = generated_action(intent, named, literals=canonical.defaults.values())
        actions = generated_actions(action, pattern_hash)
        return namespace, [a for a in actions[:-1] if display_name(namespace, a) not in tools] + actions[-1:]

    async def _tool_name(self, tool: str) -> str:
        """`tool`, or the display name of the capability whose id it is (``capability`` if it is gone)."""
        if _uuid(tool) is None:
            return tool
        row = await self._store.get(tool)
        return row.display_name if row is not None else "capability"

    async def match(self, query: Vector, *, limit: int, server: str | None = None,
                    user: str | None = None) -> list[CapabilityMatch]:
        """The capabilities best matching the embedded `query` among those `user` may see (only those of
        `server`'s tools when given)."""
        votes: dict[uuid.UUID, tuple[Capability, float, float]] = {}
        for row, similarity in await self._store.search(query, limit=max(MATCH_POOL, limit), user=user):
            similarity = max(similarity, 0.0)
            _, best, weight = votes.get(row.id, (row, 0.0, 0.0))
            votes[row.id] = (row, max(best, similarity), weight + similarity**4)
        total = sum(weight for _, _, weight in votes.values()) or 1.0
        matches = []
        for row, similarity, weight in votes.values():
            if server is not None and not all(t.startswith(f"{server}:") for t in row.tools):
                continue
            reliability = await self._reliability(row, depth=0)
            if reliability >= RELIABILITY_FLOOR:
                matches.append(CapabilityMatch(row, similarity, reliability, weight / total))
        return sorted(matches, key=lambda m: -m.score)[:limit]

    async def _reliability(self, row: Capability, *, depth: int) -> float:
        """The lowest success rate among `row`, its tools (once called enough) and the capabilities it calls."""
        rates = [float(row.success_rate)]
        for tool in row.tools:
            calls, successes = self._tool_usage(tool)
            if calls >= MIN_TOOL_CALLS:
                rates.append(successes / calls)
            elif depth < _NESTING and _uuid(tool) and (inner := await self._store.get(tool)) is not None:
                rates.append(await self._reliability(inner, depth=depth + 1))
        return min(rates)

    async def list(self, *, pattern: str | None, unnamed_only: bool, limit: int, offset: int,
                   user: str | None = None) -> tuple[list[Capability], int]:
        """A page of the capabilities `user` may see whose ``namespace:action`` matches the glob `pattern`, and
        the total."""
        like = glob_to_like(pattern) if pattern else None
        return await self._store.list(like=like, unnamed_only=unnamed_only, limit=min(limit, MAX_LIST), offset=offset,
                                      user=user)

    async def rename(self, name: str, *, namespace: str | None, action: str | None, description: str | None,
                     tags: Sequence[str] | None, visibility: str | None = None, user: str | None = None) -> Capability:
        """Give a capability a real name (checked by the naming rules; the old name keeps resolving), or share
        it (`visibility`); only its maker may."""
        row = await self._resolve(name, field="name", user=user, changing=True)
        if visibility is not None and visibility not in VISIBILITIES:
            raise InvalidRequestError(f"visibility must be one of {', '.join(VISIBILITIES)}", field="visibility")
        new_namespace, new_action = namespace or row.namespace, action or row.action
        check_namespace(new_namespace)
        if action is not None:
            check_action(new_action)
        vector = None
        if description:
            vector = (await anyio.to_thread.run_sync(self._embedder.embed, [description], limiter=self._limiter))[0]
        return await self._store.rename(row.id, namespace=new_namespace, action=new_action,
                                        description=description, tags=tags, embedding=vector, visibility=visibility)

    async def merge(self, source: str, target: str, *, prefer_source_code: bool, user: str | None = None) -> Capability:
        """Fold `source` into `target` (same tools only, both the caller's own), all or nothing."""
        source_row = await self._resolve(source, field="source", user=user, changing=True)
        target_row = await self._resolve(target, field="target", user=user, changing=True)
        return await self._store.merge(source_row.id, target_row.id, prefer_source_code=prefer_source_code)

    async def _resolve(self, ref: str, *, field: str, user: str | None = None, changing: bool = False) -> Capability:
        row = await self._store.get(ref, user=user)
        if row is None:
            raise InvalidRequestError(f"no capability {ref!r} (see cap_list, or `pml-gateway caps list`)", field=field)
        if changing and user is not None and row.created_by != user:
            raise InvalidRequestError(f"{row.display_name} is shared with you: only its maker may change it",
                                      field=field)
        return row


async def labelled_view(
    graph: ToolGraph, store: CapabilityPort, limiter: anyio.CapacityLimiter, *, user: str | None = None
) -> GraphView:
    """The page data of `graph` (laid out off the event loop), capability nodes named by their display name; a
    node whose capability is gone, or (with a `user`) is another user's private one, keeps its id."""
    labels: dict[str, str] = {}
    for node in graph.nodes:
        capability_id = _uuid(node.removeprefix(CAPABILITY_PREFIX)) if node.startswith(CAPABILITY_PREFIX) else None
        row = await store.get(capability_id, user=user) if capability_id else None
        if row is not None:
            labels[node] = row.display_name
    return await anyio.to_thread.run_sync(graph_view, graph, labels, limiter=limiter)


def _owned_hash(canonical_hash: str, owner: str | None) -> str:
    """The pattern hash of a workflow run by `owner`: one user's capability is never another's (stdio: as is)."""
    return canonical_hash if owner is None else document_hash({"owner": owner, "canonical": canonical_hash})


def _uuid(text: str) -> str | None:
    """`text` as a canonical UUID, or None when it is not one (a tool id, say)."""
    try:
        return str(uuid.UUID(text))
    except ValueError:
        return None


def _defs(state: WorkflowState, tools: Mapping[str, ToolDef]) -> list[tuple[str, ToolDef | None]]:
    return [(t.tool, tools.get(t.tool)) for t in state.dag.tasks]
