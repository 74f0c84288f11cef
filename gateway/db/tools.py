"""The tool index in Postgres: `ToolStore` implements `gateway.ports.ToolIndex` over the pool.

A sync upserts what a server lists and deletes what it no longer lists, in one transaction; embeddings come
later, for the tools `pending_embeddings` names. `schema_hash` is the sha256 of the canonical JSON of what the
server says about a tool; `text_hash` the sha256 of the embedded text (`ToolDef.embed_text`). Search is one
prepared statement over the HNSW cosine index; the pool sets ``hnsw.iterative_scan`` so that filtered searches
still return `limit` rows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import numpy as np
from numpy.typing import NDArray
from psycopg.rows import class_row, kwargs_row
from psycopg.types.json import Jsonb

from gateway.db.pool import BULK_DEADLINE_S, Pool, translated
from gateway.db.queries import query as named_query
from gateway.errors import GatewayError
from gateway.models import IndexReport, JsonObject, SearchHit, ServerState, ServerStatus, ToolDef
from gateway.ports import ToolIndex

_SYNC_LOCK_NAMESPACE = 0x746F6F6C  # "tool": advisory lock class of per-server syncs
STOP_RECORD_TIMEOUT_S = 2.0

Vector = Sequence[float] | NDArray[np.float32]
"""What the port asks for, widened to the embedder's own rows (passed on without copying)."""


@dataclass(slots=True)
class Pending:
    """A tool to (re-)embed: its id, the text to embed and that text's hash.

    Not frozen: `ports.PendingEmbedding` declares settable attributes, which a frozen class does not match.
    """

    tool_id: str
    text: str
    text_hash: str


@dataclass(frozen=True, slots=True)
class _SchemaHash:
    tool_id: str
    schema_hash: str


@dataclass(frozen=True, slots=True)
class _EmbeddingState:
    tool_id: str
    server: str
    name: str
    title: str | None
    description: str
    annotations: JsonObject | None
    model: str | None
    text_hash: str | None


@dataclass(frozen=True, slots=True)
class _Count:
    server: str
    tools: int
    embedded: int


def schema_hash(tool: ToolDef) -> str:
    """sha256 of the canonical JSON of (description, input_schema, output_schema, annotations[, title]).

    The title is appended only when there is one, so tools without one keep the hashes they had before titles
    were stored (and are not all rewritten on the first sync after the upgrade)."""
    doc: list[Any] = [tool.description, tool.input_schema, tool.output_schema, tool.annotations]
    if tool.title is not None:
        doc.append(tool.title)
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def text_hash(text: str) -> str:
    """sha256 of an embedded text."""
    return hashlib.sha256(text.encode()).hexdigest()


class ToolStore:
    """`ToolIndex` over `tool_schema`, `tool_embedding` and `server_status`."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def sync_server(self, server: str, tools: Sequence[ToolDef]) -> IndexReport:
        """Upsert `server`'s tools and delete the ones it no longer lists, in one transaction."""
        wanted = {tool.tool_id: tool for tool in tools}
        if any(tool.server != server for tool in tools):
            raise ValueError(f"sync_server({server!r}) was given tools of another server")
        hashes = {tid: schema_hash(tool) for tid, tool in wanted.items()}
        key = {"namespace": _SYNC_LOCK_NAMESPACE, "server": server}
        async with (
            translated(f"indexing the tools of {server!r}"),
            self._pool.connection(deadline_s=BULK_DEADLINE_S) as conn,
        ):
            async with conn.transaction():
                await conn.execute(named_query("lock_server_tools"), key)
                cursor = conn.cursor(row_factory=class_row(_SchemaHash))
                rows = await (await cursor.execute(named_query("server_schema_hashes"), key)).fetchall()
                existing = {row.tool_id: row.schema_hash for row in rows}
                upserts = [_tool_params(wanted[t], h) for t, h in hashes.items() if existing.get(t) != h]
                removed = sorted(set(existing) - set(wanted))
                if upserts:
                    await cursor.executemany(named_query("upsert_tool"), upserts)
                if removed:
                    await conn.execute(named_query("delete_tools"), {"tool_ids": removed})
        added = len(set(wanted) - set(existing))
        return IndexReport(
            server=server, tools=len(wanted), added=added, changed=len(upserts) - added, removed=len(removed)
        )

    async def pending_embeddings(self, model_id: str, *, server: str | None = None) -> list[Pending]:
        """Tools never embedded, whose embedded text (`ToolDef.embed_text`) changed, or embedded by another model."""
        async with translated("listing tools to embed"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(_EmbeddingState))
            await cursor.execute(named_query("embedding_states"), {"server": server})
            rows = await cursor.fetchall()
        pending: list[Pending] = []
        for row in rows:
            text = ToolDef(server=row.server, name=row.name, title=row.title, description=row.description,
                           annotations=row.annotations).embed_text
            digest = text_hash(text)
            if row.model != model_id or row.text_hash != digest:
                pending.append(Pending(row.tool_id, text, digest))
        return pending

    async def save_embeddings(self, model_id: str, rows: Sequence[tuple[str, Vector, str]]) -> None:
        """Store ``(tool_id, vector, text_hash)`` rows computed by `model_id`, in one transaction: a binary COPY
        into a temporary table, then one upsert (a row-by-row insert cost ~0.5 ms a tool)."""
        if not rows:
            return
        async with translated("saving tool embeddings"), self._pool.connection(deadline_s=BULK_DEADLINE_S) as conn:
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.execute(named_query("stage_embeddings"))
                async with cursor.copy(named_query("copy_embeddings")) as copy:
                    copy.set_types(["text", "vector", "text"])
                    for tid, vector, digest in rows:
                        await copy.write_row((tid, np.asarray(vector, dtype=np.float32), digest))
                await cursor.execute(named_query("merge_embeddings"), {"model": model_id})

    async def search(
        self, query: Vector, *, model_id: str, limit: int, server: str | None = None
    ) -> list[SearchHit]:
        """The `limit` nearest tools by cosine similarity, optionally of one server, nearest first."""
        if limit <= 0:
            return []
        rows = await self.search_pool(query, model_id=model_id, pool=limit, server=server)
        return sorted(rows, key=lambda h: (-h.semantic, h.tool_id))

    async def search_pool(
        self, query: Vector, *, model_id: str, pool: int, extra: Sequence[str] = (), server: str | None = None
    ) -> list[SearchHit]:
        """The `pool` nearest tools plus the `extra` ones, unordered, each with its cosine similarity (0 for an
        `extra` tool this model has not embedded yet)."""
        sql = named_query("search_pool" if server is None else "search_pool_server")
        params = {"query": np.asarray(query, dtype=np.float32), "model": model_id, "pool": pool,
                  "extra": list(extra), "server": server}
        async with translated("searching tools"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=kwargs_row(_hit))
            await cursor.execute(sql, params, prepare=True)
            return await cursor.fetchall()

    async def embeddings(self, model_id: str) -> tuple[list[str], NDArray[np.float32]]:
        """Every tool embedded by `model_id`: its ids, by id, and their vectors as the rows of one matrix (read in
        binary: a few MB for thousands of tools)."""
        async with translated("reading the tool embeddings"), self._pool.connection(deadline_s=BULK_DEADLINE_S) as conn:
            cursor = conn.cursor(binary=True)
            await cursor.execute(named_query("tool_embeddings"), {"model": model_id})
            rows = await cursor.fetchall()
        ids = [row[0] for row in rows]
        if not rows:
            return ids, np.zeros((0, 0), dtype=np.float32)
        return ids, np.stack([np.asarray(row[1].to_numpy() if hasattr(row[1], "to_numpy") else row[1],
                                         dtype=np.float32) for row in rows])

    async def get_tool(self, tool_id: str) -> ToolDef | None:
        """The indexed definition of `tool_id` (``server:tool``), if any."""
        async with translated(f"reading tool {tool_id!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(ToolDef))
            return await (await cursor.execute(named_query("get_tool"), {"tool_id": tool_id})).fetchone()

    async def all_tools(self) -> list[ToolDef]:
        """Every indexed tool, by id."""
        async with translated("reading the tool index"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(ToolDef))
            return await (await cursor.execute(named_query("all_tools"))).fetchall()

    async def count_by_server(self) -> dict[str, tuple[int, int]]:
        """``{server: (tools, embedded tools)}`` (embedded by any model)."""
        async with translated("counting indexed tools"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(_Count))
            rows = await (await cursor.execute(named_query("count_by_server"))).fetchall()
        return {row.server: (row.tools, row.embedded) for row in rows}

    async def record_server_status(self, status: ServerStatus) -> None:
        """Remember `status` as the last known state of its server (read by ``pml-gateway status``)."""
        params = {
            "name": status.name, "state": status.state.value, "reason": status.reason,
            "tool_count": status.tool_count, "restarts": status.restarts, "pid": status.pid,
        }
        async with translated(f"recording the status of {status.name!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("upsert_server_status"), params)

    async def record_stopped(self, statuses: Sequence[ServerStatus]) -> None:
        """On the way out, mark the servers still running stopped, so `status` does not show them running
        (shielded, bounded by `STOP_RECORD_TIMEOUT_S`; a failure is left unsaid: the gateway is leaving)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(STOP_RECORD_TIMEOUT_S):
            for status in statuses:
                if status.state in (ServerState.RUNNING, ServerState.STARTING, ServerState.RESTARTING):
                    with contextlib.suppress(GatewayError):
                        await self.record_server_status(dataclasses.replace(status, state=ServerState.STOPPED))

    async def server_statuses(self) -> list[ServerStatus]:
        """The last recorded state of every server, by name."""
        async with translated("reading server statuses"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=kwargs_row(_status))
            return await (await cursor.execute(named_query("server_statuses"))).fetchall()


if TYPE_CHECKING:

    def _is_a_tool_index(store: ToolStore) -> ToolIndex:
        return store  # mypy checks that ToolStore implements the port


def _tool_params(tool: ToolDef, digest: str) -> dict[str, Any]:
    return {
        "tool_id": tool.tool_id, "server": tool.server, "name": tool.name, "title": tool.title,
        "description": tool.description,
        "input_schema": Jsonb(tool.input_schema), "output_schema": _jsonb(tool.output_schema),
        "annotations": _jsonb(tool.annotations), "schema_hash": digest,
    }


def _jsonb(value: JsonObject | None) -> Jsonb | None:
    return Jsonb(value) if value is not None else None


def _hit(*, semantic: float, **row: Any) -> SearchHit:
    return SearchHit(score=semantic, semantic=semantic, **row)


def _status(*, state: str, **row: Any) -> ServerStatus:
    return ServerStatus(state=ServerState(state), **row)
