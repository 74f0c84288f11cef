"""The tool index keeps what servers list, knows what to (re-)embed, and ranks by cosine similarity."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest
from numpy.typing import NDArray
from psycopg import sql
from psycopg.rows import scalar_row

from gateway.db import ToolStore, migrate, open_pool
from gateway.db.queries import query
from gateway.db.tools import schema_hash, text_hash
from gateway.models import ServerState, ServerStatus, ToolDef

pytestmark = pytest.mark.anyio

DIMS = 384


@pytest.fixture
async def hnsw_store(database_url: str) -> AsyncIterator[ToolStore]:
    """A store whose sessions cannot seq-scan: even small tables are searched through the HNSW index."""
    name = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(sql.SQL("ALTER DATABASE {} SET enable_seqscan = off").format(sql.Identifier(name)))
    await migrate(database_url)
    pool = await open_pool(database_url, max_size=2)
    try:
        async with pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            params = {"query": unit((0, 1)), "model": "m", "pool": 5, "extra": []}
            plan = await (await cursor.execute("EXPLAIN " + query("search_pool"), params)).fetchall()
        assert any("tool_embedding_hnsw_idx" in line for line in plan), plan
        yield ToolStore(pool)
    finally:
        await pool.close()


def unit(*weights: tuple[int, float]) -> NDArray[np.float32]:
    """A unit vector from (axis, weight) pairs."""
    vector = np.zeros(DIMS, dtype=np.float32)
    for axis, weight in weights:
        vector[axis] = weight
    return vector / np.linalg.norm(vector)


def tools(server: str, count: int, description: str = "does things") -> list[ToolDef]:
    return [ToolDef(server=server, name=f"t{i:03d}", description=f"{description} {i}") for i in range(count)]


async def embed_all(store: ToolStore, model: str, vectors: dict[str, NDArray[np.float32]]) -> None:
    pending = {p.tool_id: p for p in await store.pending_embeddings(model)}
    await store.save_embeddings(model, [(tid, vec, pending[tid].text_hash) for tid, vec in vectors.items()])


async def test_a_first_sync_adds_every_tool_and_reads_back_equal(tool_store: ToolStore) -> None:
    listed = [
        ToolDef(server="fs", name="read", description="Read a file", input_schema={"type": "object"}),
        ToolDef(server="fs", name="write", output_schema={"type": "object"}, annotations={"idempotent": 1}),
    ]
    report = await tool_store.sync_server("fs", listed)
    assert (report.tools, report.added, report.changed, report.removed) == (2, 2, 0, 0)
    assert await tool_store.all_tools() == listed
    assert await tool_store.get_tool("fs:write") == listed[1]
    assert await tool_store.get_tool("fs:nope") is None


async def test_a_resync_reports_added_changed_and_removed_tools(tool_store: ToolStore) -> None:
    await tool_store.sync_server("fs", tools("fs", 3))
    assert (await tool_store.sync_server("fs", tools("fs", 3))).changed == 0
    changed = dataclasses.replace(tools("fs", 3)[1], input_schema={"type": "object", "required": ["path"]})
    listed = [tools("fs", 3)[0], changed, ToolDef(server="fs", name="new")]
    report = await tool_store.sync_server("fs", listed)
    assert (report.tools, report.added, report.changed, report.removed) == (3, 1, 1, 1)
    assert [t.tool_id for t in await tool_store.all_tools()] == ["fs:new", "fs:t000", "fs:t001"]
    assert await tool_store.get_tool("fs:t001") == changed


async def test_a_sync_leaves_other_servers_alone(tool_store: ToolStore) -> None:
    await tool_store.sync_server("a", tools("a", 2))
    await tool_store.sync_server("b", tools("b", 3))
    assert (await tool_store.sync_server("a", [])).removed == 2
    assert await tool_store.count_by_server() == {"b": (3, 0)}


async def test_every_new_tool_is_pending_until_embedded(tool_store: ToolStore) -> None:
    await tool_store.sync_server("fs", tools("fs", 2))
    pending = await tool_store.pending_embeddings("m1")
    assert [(p.tool_id, p.text) for p in pending] == [
        ("fs:t000", "t000 | fs server: does things 0"),
        ("fs:t001", "t001 | fs server: does things 1"),
    ]
    assert pending[0].text_hash == text_hash("t000 | fs server: does things 0")
    await embed_all(tool_store, "m1", {"fs:t000": unit((0, 1)), "fs:t001": unit((1, 1))})
    assert await tool_store.pending_embeddings("m1") == []
    assert await tool_store.count_by_server() == {"fs": (2, 2)}


async def test_a_description_change_makes_only_that_tool_pending(tool_store: ToolStore) -> None:
    await tool_store.sync_server("fs", tools("fs", 2))
    await embed_all(tool_store, "m1", {"fs:t000": unit((0, 1)), "fs:t001": unit((1, 1))})
    listed = tools("fs", 2)
    listed[1] = dataclasses.replace(listed[1], description="now reads files")
    listed[0] = dataclasses.replace(listed[0], input_schema={"type": "object", "properties": {}})
    await tool_store.sync_server("fs", listed)
    assert [(p.tool_id, p.text) for p in await tool_store.pending_embeddings("m1")] == [
        ("fs:t001", "t001 | fs server: now reads files")
    ]


async def test_another_model_makes_every_tool_pending(tool_store: ToolStore) -> None:
    await tool_store.sync_server("fs", tools("fs", 2))
    await tool_store.sync_server("git", tools("git", 1))
    vectors = {"fs:t000": unit((0, 1)), "fs:t001": unit((1, 1)), "git:t000": unit((2, 1))}
    await embed_all(tool_store, "m1", vectors)
    assert [p.tool_id for p in await tool_store.pending_embeddings("m2")] == list(vectors)
    assert [p.tool_id for p in await tool_store.pending_embeddings("m2", server="git")] == ["git:t000"]


async def test_a_removed_tool_takes_its_embedding_along(tool_store: ToolStore) -> None:
    await tool_store.sync_server("fs", tools("fs", 2))
    await embed_all(tool_store, "m1", {"fs:t000": unit((0, 1)), "fs:t001": unit((1, 1))})
    await tool_store.sync_server("fs", tools("fs", 1))
    assert await tool_store.count_by_server() == {"fs": (1, 1)}
    hits = await tool_store.search(unit((1, 1)), model_id="m1", limit=5)
    assert [h.tool_id for h in hits] == ["fs:t000"]


async def test_an_embedding_for_a_vanished_tool_is_skipped(tool_store: ToolStore) -> None:
    await tool_store.sync_server("fs", tools("fs", 1))
    await tool_store.save_embeddings("m1", [("fs:gone", unit((0, 1)), "h"), ("fs:t000", unit((1, 1)), "h")])
    assert await tool_store.count_by_server() == {"fs": (1, 1)}


async def test_search_ranks_by_cosine_similarity(tool_store: ToolStore) -> None:
    await tool_store.sync_server("fs", tools("fs", 5))
    await embed_all(tool_store, "m1", {f"fs:t{i:03d}": unit((i, 1)) for i in range(5)})
    hits = await tool_store.search(unit((2, 1.0), (3, 0.5)), model_id="m1", limit=3)
    assert [h.tool_id for h in hits] == ["fs:t002", "fs:t003", "fs:t000"]
    assert [round(h.semantic, 4) for h in hits] == [0.8944, 0.4472, 0.0]
    assert hits[0].score == hits[0].semantic
    assert (hits[0].server, hits[0].name, hits[0].description) == ("fs", "t002", "does things 2")


async def test_search_only_uses_the_asked_model(tool_store: ToolStore) -> None:
    await tool_store.sync_server("fs", tools("fs", 2))
    await embed_all(tool_store, "m1", {"fs:t000": unit((0, 1))})
    await embed_all(tool_store, "m2", {"fs:t001": unit((0, 1))})
    assert [h.tool_id for h in await tool_store.search(unit((0, 1)), model_id="m2", limit=5)] == ["fs:t001"]
    assert await tool_store.search(unit((0, 1)), model_id="m3", limit=5) == []


async def test_a_server_filtered_search_still_returns_limit_rows(tool_store: ToolStore) -> None:
    rng = np.random.default_rng(3)
    near = {f"big:t{i:03d}": unit((0, 1.0), (int(rng.integers(1, DIMS)), 0.3)) for i in range(400)}
    far = {f"small:t{i:03d}": unit((1, 1.0), (int(rng.integers(2, DIMS)), 0.3)) for i in range(30)}
    await tool_store.sync_server("big", tools("big", 400))
    await tool_store.sync_server("small", tools("small", 30))
    await embed_all(tool_store, "m1", near | far)
    hits = await tool_store.search(unit((0, 1)), model_id="m1", limit=12, server="small")
    assert len(hits) == 12 and {h.server for h in hits} == {"small"}
    assert [h.semantic for h in hits] == sorted((h.semantic for h in hits), reverse=True)
    assert {h.server for h in await tool_store.search(unit((0, 1)), model_id="m1", limit=12)} == {"big"}


async def test_an_hnsw_search_past_ef_search_still_returns_limit_rows(hnsw_store: ToolStore) -> None:
    # Distinct random directions: the HNSW graph over one-hot vectors (many identical, the rest all equally far)
    # is degenerate, and pgvector's random levels then left a node unreachable in one CI run (149 rows).
    rng = np.random.default_rng(5)
    vectors = rng.standard_normal((400, DIMS)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    await hnsw_store.sync_server("big", tools("big", 400))
    await embed_all(hnsw_store, "m1", {f"big:t{i:03d}": vectors[i] for i in range(400)})
    hits = await hnsw_store.search(vectors[7], model_id="m1", limit=150)  # ef_search is 64: the scan goes on
    assert len(hits) == 150 and hits[0].tool_id == "big:t007"
    assert [h.semantic for h in hits] == sorted((h.semantic for h in hits), reverse=True)


async def test_an_hnsw_search_filtered_by_model_scans_on_until_it_has_limit_rows(
    hnsw_store: ToolStore,
) -> None:
    rng = np.random.default_rng(7)
    await hnsw_store.sync_server("s", tools("s", 330))
    old = {f"s:t{i:03d}": unit((0, 1.0), (int(rng.integers(1, DIMS)), 0.2)) for i in range(300)}
    new = {f"s:t{i:03d}": unit((1, 1.0), (int(rng.integers(2, DIMS)), 0.2)) for i in range(300, 330)}
    await embed_all(hnsw_store, "old", old)
    await embed_all(hnsw_store, "new", new)
    hits = await hnsw_store.search(unit((0, 1)), model_id="new", limit=12)
    assert len(hits) == 12 and all(int(h.name[1:]) >= 300 for h in hits)


async def test_server_statuses_keep_the_last_state_of_each_server(tool_store: ToolStore) -> None:
    await tool_store.record_server_status(ServerStatus(name="fs", state=ServerState.STARTING))
    running = ServerStatus(name="fs", state=ServerState.RUNNING, tool_count=4, restarts=1, pid=4242)
    failed = ServerStatus(name="git", state=ServerState.FAILED, reason="exited with 1")
    await tool_store.record_server_status(running)
    await tool_store.record_server_status(failed)
    assert await tool_store.server_statuses() == [running, failed]


def test_the_schema_hash_ignores_key_order_but_not_content() -> None:
    a = ToolDef(server="s", name="t", input_schema={"type": "object", "properties": {"a": {}, "b": {}}})
    b = ToolDef(server="s", name="t", input_schema={"properties": {"b": {}, "a": {}}, "type": "object"})
    assert schema_hash(a) == schema_hash(b)
    assert schema_hash(a) != schema_hash(dataclasses.replace(a, annotations={"readOnlyHint": True}))


def test_a_tool_without_a_title_keeps_the_schema_hash_it_had_before_titles_were_stored() -> None:
    tool = ToolDef(server="s", name="t", description="d", input_schema={"type": "object"})
    before = hashlib.sha256(b'["d",{"type":"object"},null,null]').hexdigest()  # (description, in, out, annotations)
    assert schema_hash(tool) == before
    assert schema_hash(dataclasses.replace(tool, title="T")) != before


@pytest.mark.parametrize(
    ("title", "annotations", "text"),
    [
        (None, None, "t001 | fs server: does things 1"),
        ("Does things", None, "t001 | Does things. fs server: does things 1"),
        (None, {"title": "From the hints"}, "t001 | From the hints. fs server: does things 1"),
        ("Given", {"title": "From the hints"}, "t001 | Given. fs server: does things 1"),
        ("t001", None, "t001 | fs server: does things 1"),
    ],
)
async def test_a_title_is_stored_and_embedded_before_the_description_and_a_new_one_is_re_embedded(
    tool_store: ToolStore, title: str | None, annotations: dict[str, str] | None, text: str
) -> None:
    await tool_store.sync_server("fs", tools("fs", 2))
    await embed_all(tool_store, "m1", {"fs:t000": unit((0, 1)), "fs:t001": unit((1, 1))})
    listed = tools("fs", 2)
    listed[1] = dataclasses.replace(listed[1], title=title, annotations=annotations)

    report = await tool_store.sync_server("fs", listed)

    assert report.changed == (0 if title is None and annotations is None else 1)
    assert await tool_store.get_tool("fs:t001") == listed[1]
    pending = [(p.tool_id, p.text) for p in await tool_store.pending_embeddings("m1")]
    assert pending == ([] if text == "t001 | fs server: does things 1" else [("fs:t001", text)])


async def test_a_tool_found_by_words_before_it_is_embedded_joins_the_pool_with_similarity_zero(
    tool_store: ToolStore,
) -> None:
    await tool_store.sync_server("fs", tools("fs", 3))
    await embed_all(tool_store, "m1", {"fs:t000": unit((0, 1))})  # t001 and t002 still wait for their embedding

    pool = await tool_store.search_pool(unit((0, 1)), model_id="m1", pool=5, extra=["fs:t001"])
    nearest = await tool_store.search(unit((0, 1)), model_id="m1", limit=5)

    assert sorted((h.tool_id, round(h.semantic, 4)) for h in pool) == [("fs:t000", 1.0), ("fs:t001", 0.0)]
    assert [h.tool_id for h in nearest] == ["fs:t000"]  # by meaning alone only embedded tools are found
