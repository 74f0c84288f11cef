"""Search over all tools walks the HNSW index (timings live in bench/, never in tests)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gateway.db import ToolStore
from gateway.db.queries import query as named_query
from gateway.models import ToolDef

pytestmark = pytest.mark.anyio


async def test_the_search_query_uses_the_hnsw_index(tool_store: ToolStore) -> None:
    await tool_store.sync_server("s", [ToolDef(server="s", name=f"t{i}") for i in range(200)])
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((200, 384)).astype(np.float32)
    pending = await tool_store.pending_embeddings("m")
    await tool_store.save_embeddings("m", [(p.tool_id, v, p.text_hash) for p, v in zip(pending, vectors, strict=True)])
    params = {"query": vectors[0], "model": "m", "pool": 10, "extra": []}
    async with tool_store._pool.connection() as conn:
        await conn.execute("SET enable_seqscan = off")
        try:
            cursor = await conn.execute("EXPLAIN (FORMAT JSON) " + named_query("search_pool"), params)
            row = await cursor.fetchone()
        finally:
            await conn.execute("RESET enable_seqscan")
    assert row is not None
    assert "Index Scan" in json.dumps(row[0]) and "tool_embedding_hnsw" in json.dumps(row[0])
