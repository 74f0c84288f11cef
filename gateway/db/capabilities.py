"""Capability persistence in Postgres: `CapabilityStore` keeps the workflows that ran well, and their names.

A capability is a ``workflow_pattern`` (code, intent embedding, statistics) named by a ``capability_records``
row (FQDN ``org.project.namespace.action.hash``, display name ``namespace:action``). `record` counts a run with
one ``INSERT ... ON CONFLICT DO UPDATE``: of concurrent first successful runs exactly one inserts the pattern
and creates its capability, under the first name offered that no capability has or had; a failed run counts
only for a known pattern. `rename` (to a name no other capability has or had) and `merge` keep the old names
resolving as aliases; `merge` also moves the capability's edges in ``tool_dependency`` (graph node
``capability:<id>``). Each change runs in one transaction; every psycopg error surfaces as a `DatabaseError`
via `translated`, a request that cannot be met as an `InvalidRequestError`.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from psycopg.rows import class_row, kwargs_row, scalar_row
from psycopg.types.json import Jsonb

from gateway.db.pool import Pool, translated
from gateway.db.queries import query as named_query
from gateway.db.tools import Vector
from gateway.errors import InvalidRequestError
from gateway.models import LOCAL_USER, Capability, JsonObject
from gateway.models import node_id as node_id  # re-exported: callers import it from here

FQDN_HASH_CHARS = 4
"""Characters of the pattern hash in a capability's FQDN (``org.project.namespace.action.hash4``)."""


CapabilityRow = Capability
"""`Capability`'s old name, for the callers that still import it from here."""


@dataclass(frozen=True, slots=True)
class _Counted:
    pattern_id: uuid.UUID
    inserted: bool


Connection = psycopg.AsyncConnection[Any]


class CapabilityStore:
    """Capabilities over the pool: record runs, resolve and list names, rename, merge, search, cache results."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def record(
        self, *, pattern_hash: str, document: JsonObject, tools: Sequence[str], parameters_schema: JsonObject | None,
        embedding: Vector, success: bool, duration_ms: float, namespace: str, action: str, cacheable: bool,
        org: str = "local", project: str = "default", intent_key: str | None = None, created_by: str = LOCAL_USER,
        alternatives: Sequence[str] = (), runs: int = 1,
    ) -> Capability | None:
        """Count one run of the workflow `pattern_hash`; its capability, or None for a failed unknown one.

        A first successful run creates the pattern and its capability ``namespace:action``, or, when another
        capability has or had that name, ``namespace:<the first free one of alternatives>`` (`InvalidRequestError`
        when none is free). A successful run keeps its intent (`embedding`, under `intent_key`, by default one per
        pattern: the same key again counts that intent again). A capability learned from code has the `document`
        ``{"code": <normal form>, "code_hash": <its hash>}``; a new pattern starts with `runs` successful runs."""
        params = {
            "pattern_hash": pattern_hash,
            "dag_structure": Jsonb(_dag_structure(document, tools, kind=_kind(document))),
            "embedding": _vector(embedding), "parameters_schema": _json(parameters_schema),
            "cacheable": cacheable, "successes": int(success), "ms": duration_ms,
            "code": document.get("code"), "code_hash": document.get("code_hash"), "runs": max(1, runs),
        }
        name = {"org": org, "project": project, "namespace": namespace, "action": action,
                "hash": pattern_hash[:FQDN_HASH_CHARS]}
        async with translated(f"recording a run of workflow {pattern_hash[:12]!r}"), self._pool.connection() as conn:
            async with conn.transaction():
                cursor = conn.cursor(row_factory=class_row(_Counted))
                await cursor.execute(named_query("upsert_pattern_run" if success else "count_pattern_run"), params)
                counted = await cursor.fetchone()
                if counted is None:
                    return None
                if counted.inserted:
                    free = await _free_action(conn, name, [action, *alternatives])
                    await conn.execute(named_query("insert_capability"), {
                        **name, "action": free, "pattern_id": counted.pattern_id, "created_by": created_by})
                if success:
                    await conn.execute(named_query("add_intent"), {
                        "pattern_id": counted.pattern_id, "intent_key": intent_key or f"pattern:{pattern_hash}",
                        "embedding": params["embedding"]})
                return await _one(conn, "capability_by_pattern", {"pattern_id": counted.pattern_id})

    async def count_run(self, pattern_hash: str, *, success: bool, duration_ms: float) -> None:
        """Count one call of a known capability (run as a task) in its pattern's statistics."""
        params = {"pattern_hash": pattern_hash, "successes": int(success), "ms": duration_ms}
        async with translated(f"counting a run of workflow {pattern_hash[:12]!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("count_pattern_run"), params)

    async def get(self, ref: str, *, user: str | None = None) -> Capability | None:
        """The capability `ref` names: a UUID, an FQDN, a display name ``namespace:action``, or an old name.
        With a `user`, only one that user made or that is shared; None sees every capability."""
        async with translated(f"resolving capability {ref!r}"), self._pool.connection() as conn:
            return await _one(conn, "resolve_capability", {"id": _uuid(ref), "ref": ref, "user": user})

    async def aliases(self, capability_id: uuid.UUID) -> builtins.list[str]:
        """The old display names and FQDNs that still resolve to the capability, sorted."""
        async with translated(f"reading the old names of capability {capability_id}"), self._pool.connection() as c:
            cursor = c.cursor(row_factory=scalar_row)
            return await (await cursor.execute(named_query("capability_aliases"), {"id": capability_id})).fetchall()

    async def list(
        self, *, like: str | None = None, unnamed_only: bool = False, limit: int = 50, offset: int = 0,
        user: str | None = None,
    ) -> tuple[builtins.list[Capability], int]:
        """A page of capabilities by display name, and how many match in all. `like` is a LIKE pattern over the
        display name (``\\`` escapes); `unnamed_only` keeps those no user ever renamed; a `user` sees their own
        and the shared ones."""
        params = {"like": like, "unnamed_only": unnamed_only, "limit": limit, "offset": offset, "user": user}
        async with translated("listing capabilities"), self._pool.connection() as conn, conn.transaction():
            await conn.execute(named_query("page_snapshot"))
            cursor = conn.cursor(row_factory=class_row(Capability))
            rows = await (await cursor.execute(named_query("list_capabilities"), params)).fetchall()
            counter = conn.cursor(row_factory=scalar_row)
            total = await (await counter.execute(named_query("count_capabilities"), params)).fetchone()
        return rows, int(total or 0)

    async def rename(
        self, capability_id: uuid.UUID, *, namespace: str, action: str, description: str | None = None,
        tags: Sequence[str] | None = None, embedding: Vector | None = None, visibility: str | None = None,
    ) -> Capability:
        """Name the capability ``namespace:action``; its old display name and FQDN keep resolving. None keeps the
        description, tags, intent embedding or visibility. `InvalidRequestError` when another capability has or had
        the name; a new name marks the capability `renamed`."""
        async with translated(f"renaming capability {capability_id}"), self._pool.connection() as conn:
            async with conn.transaction():
                old = await _locked(conn, [capability_id], field="capability_id")
                current = old[capability_id]
                names = {"org": current.org, "project": current.project, "namespace": namespace, "action": action}
                await conn.execute(named_query("lock_display_name"), {**names, "name": f"{namespace}:{action}"})
                taken = conn.cursor(row_factory=scalar_row)
                if await (await taken.execute(named_query("name_taken"), {**names, "id": capability_id})).fetchone():
                    raise InvalidRequestError(f"{namespace}:{action} names another capability (now, or as an old name "
                                              "that still calls it)", field="action")
                await _add_aliases(conn, capability_id, current)
                await conn.execute(named_query("rename_record"), {
                    "id": capability_id, "namespace": namespace, "action": action, "visibility": visibility,
                    "tags": None if tags is None else list(tags)})
                await conn.execute(named_query("describe_pattern"), {
                    "pattern_id": current.pattern_id, "name": f"{namespace}:{action}", "description": description,
                    "embedding": None if embedding is None else _vector(embedding)})
                if embedding is not None:
                    await conn.execute(named_query("add_intent"), {
                        "pattern_id": current.pattern_id, "intent_key": "description", "embedding": _vector(embedding)})
                return await _required(conn, capability_id)

    async def merge(self, source_id: uuid.UUID, target_id: uuid.UUID, *, prefer_source_code: bool) -> Capability:
        """Fold the capability `source_id` into `target_id`, which must use the same tools: counts add up, the
        newer definition stays (the source's if `prefer_source_code`), the source's names and graph edges move
        to the target, the source is deleted. All or nothing; `InvalidRequestError` when refused."""
        if source_id == target_id:
            raise InvalidRequestError("a capability cannot be merged into itself", field="target_id")
        async with translated(f"merging capability {source_id} into {target_id}"), self._pool.connection() as conn:
            async with conn.transaction():
                rows = await _locked(conn, [source_id, target_id], field="source_id")
                source, target = rows[source_id], rows[target_id]
                if set(source.tools) != set(target.tools):
                    message = f"{source.display_name} and {target.display_name} use different tools"
                    raise InvalidRequestError(message, field="target_id")
                await conn.execute(named_query("merge_counts"), _merged_counts(source, target))
                await conn.execute(named_query("move_intents"), {"source": source.pattern_id,
                                                                 "target": target.pattern_id})
                await conn.execute(named_query("move_aliases"), {"source": source_id, "target": target_id})
                await _add_aliases(conn, target_id, source)
                await conn.execute(named_query("move_capability_edges"),
                                   {"source": node_id(source_id), "target": node_id(target_id)})
                await conn.execute(named_query("delete_pattern"), {"pattern_id": source.pattern_id})
                kept = source if prefer_source_code or source.created_at > target.created_at else target
                await conn.execute(named_query("redefine_pattern"), {
                    "pattern_id": target.pattern_id, "pattern_hash": kept.pattern_hash,
                    "dag_structure": Jsonb(_dag_structure(kept.document, kept.tools, kind=_kind(kept.document))),
                    "parameters_schema": _json(kept.parameters_schema)})
                await conn.execute(named_query("touch_record"), {"id": target_id})
                await conn.execute(named_query("invalidate_cache"), {"id": target_id})
                return await _required(conn, target_id)

    async def search(
        self, embedding: Vector, *, limit: int, user: str | None = None
    ) -> builtins.list[tuple[Capability, float]]:
        """``(capability, cosine similarity)`` for each of the `limit` intents nearest `embedding`, nearest first
        (a capability comes once per intent of it among them), among those `user` may see."""
        if limit <= 0:
            return []
        params = {"query": _vector(embedding), "limit": limit, "user": user}
        async with translated("searching capabilities by intent"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=kwargs_row(_hit))
            return await (await cursor.execute(named_query("search_capabilities"), params)).fetchall()

    async def cached(self, capability_id: uuid.UUID, params_hash: str) -> Any | None:
        """The unexpired cached result of the capability for these parameters, or None."""
        params = {"id": capability_id, "params_hash": params_hash}
        async with translated(f"reading the cache of capability {capability_id}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            return await (await cursor.execute(named_query("cached_result"), params)).fetchone()

    async def store_cache(self, capability_id: uuid.UUID, params_hash: str, result: Any, ttl_ms: int) -> None:
        """Cache `result` (JSON) of the capability for these parameters, for `ttl_ms` milliseconds."""
        params = {"id": capability_id, "params_hash": params_hash, "result": Jsonb(result), "ttl_ms": ttl_ms}
        async with translated(f"caching a result of capability {capability_id}"), self._pool.connection() as conn:
            await conn.execute(named_query("store_cached_result"), params)

    async def invalidate(self, capability_id: uuid.UUID) -> None:
        """Forget every cached result of the capability."""
        async with translated(f"invalidating the cache of capability {capability_id}"), self._pool.connection() as c:
            await c.execute(named_query("invalidate_cache"), {"id": capability_id})


async def _one(conn: Connection, name: str, params: dict[str, Any]) -> Capability | None:
    cursor = conn.cursor(row_factory=class_row(Capability))
    return await (await cursor.execute(named_query(name), params)).fetchone()


async def _free_action(conn: Connection, name: dict[str, str], actions: Sequence[str]) -> str:
    """The first of `actions` that no capability has or had in ``name["namespace"]``. Each is locked until the
    transaction ends, so that a concurrent rename or first run cannot take it meanwhile; in sorted order, so
    that two first runs cannot deadlock."""
    names = {action: f"{name['namespace']}:{action}" for action in actions}
    for display in sorted(set(names.values())):
        await conn.execute(named_query("lock_display_name"), {**name, "name": display})
    taken = conn.cursor(row_factory=scalar_row)
    for action in actions:
        params = {**name, "action": action, "id": None}
        if not await (await taken.execute(named_query("name_taken"), params)).fetchone():
            return action
    raise InvalidRequestError(f"every name offered for a new capability is taken: {', '.join(names.values())}",
                              field="action")


async def _required(conn: Connection, capability_id: uuid.UUID) -> Capability:
    row = await _one(conn, "capability_by_id", {"id": capability_id})
    if row is None:  # only if deleted concurrently, between the lock and here: cannot happen under the lock
        raise InvalidRequestError(f"no capability {capability_id}", field="capability_id")
    return row


async def _locked(conn: Connection, ids: Sequence[uuid.UUID], *, field: str) -> dict[uuid.UUID, Capability]:
    """The capabilities `ids`, locked (records and patterns) until the transaction ends; each must exist."""
    await conn.execute(named_query("lock_capabilities"), {"ids": list(ids)})
    rows: dict[uuid.UUID, Capability] = {}
    for capability_id in ids:
        row = await _one(conn, "capability_by_id", {"id": capability_id})
        if row is None:
            raise InvalidRequestError(f"no capability {capability_id}", field=field)
        rows[capability_id] = row
    return rows


async def _add_aliases(conn: Connection, owner: uuid.UUID, named: Capability) -> None:
    """`named`'s display name and FQDN keep resolving, to `owner`."""
    async with conn.cursor() as cursor:
        await cursor.executemany(named_query("add_alias"), [
            {"alias": named.display_name, "id": owner}, {"alias": named.fqdn, "id": owner}])


def _merged_counts(source: Capability, target: Capability) -> dict[str, Any]:
    usage = source.usage_count + target.usage_count
    total_ms = source.avg_duration_ms * source.usage_count + target.avg_duration_ms * target.usage_count
    return {
        "pattern_id": target.pattern_id, "pattern_ids": [source.pattern_id, target.pattern_id],
        "usage_count": usage, "success_count": source.success_count + target.success_count,
        "avg_duration_ms": round(total_ms / usage) if usage else 0,
    }


def _hit(*, similarity: float, **fields: Any) -> tuple[Capability, float]:
    return Capability(**fields), float(similarity)


def _kind(document: JsonObject) -> str:
    return "code_execution" if "code" in document else "dag"


def _dag_structure(document: JsonObject, tools: Sequence[str], kind: str = "dag") -> JsonObject:
    return {"type": kind, "document": document, "tools_used": list(tools)}


def _vector(embedding: Vector) -> np.ndarray[Any, np.dtype[np.float32]]:
    return np.asarray(embedding, dtype=np.float32)


def _json(value: JsonObject | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _uuid(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except ValueError:
        return None
