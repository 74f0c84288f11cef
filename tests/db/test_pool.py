"""The pool registers pgvector, sets the search settings, and says clearly why it cannot connect."""

from __future__ import annotations

import numpy as np
import pytest
from psycopg.rows import scalar_row

from gateway.db import ToolStore, open_pool
from gateway.db.pool import mask_password
from gateway.errors import DatabaseError
from gateway.models import ToolDef

pytestmark = pytest.mark.anyio


async def test_a_server_that_is_not_there_is_named_in_the_error() -> None:
    with pytest.raises(DatabaseError, match=r"cannot reach Postgres at postgresql://u:\*\*\*@/db"):
        await open_pool("postgresql://u:pw@/db?host=/nonexistent-socket-dir")


async def test_a_malformed_url_is_called_invalid() -> None:
    with pytest.raises(DatabaseError, match=r'invalid database URL .*: invalid URI query parameter: "colour'):
        await open_pool("postgresql://me@/db?colour=blue")


async def test_a_database_without_the_vector_extension_is_refused_with_the_fix(database_url: str) -> None:
    with pytest.raises(DatabaseError, match="'vector' extension is not installed"):
        await open_pool(database_url)


async def test_pooled_sessions_scan_hnsw_iteratively(tool_store: ToolStore, database_url: str) -> None:
    pool = await open_pool(database_url, max_size=1)
    try:
        async with pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            assert await (await cursor.execute("SHOW hnsw.iterative_scan")).fetchone() == "relaxed_order"
            assert await (await cursor.execute("SHOW hnsw.ef_search")).fetchone() == "64"
    finally:
        await pool.close()


async def test_a_failing_query_becomes_a_database_error_naming_the_action(tool_store: ToolStore) -> None:
    with pytest.raises(DatabaseError, match="saving tool embeddings failed: expected 384 dimensions, not 3"):
        await tool_store.sync_server("fs", [ToolDef(server="fs", name="t")])
        await tool_store.save_embeddings("m", [("fs:t", np.ones(3, dtype=np.float32), "h")])


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://me:pw@db.example/x", "postgresql://me:***@db.example/x"),
        ("postgresql://me@db/x?password=pw&sslmode=require", "postgresql://me@db/x?password=***&sslmode=require"),
        ("host=db user=me password='p w' dbname=x", "host=db user=me password=*** dbname=x"),
        ("postgresql://me@/x?host=/tmp", "postgresql://me@/x?host=/tmp"),
    ],
)
def test_passwords_are_masked_in_every_url_form(url: str, shown: str) -> None:
    assert mask_password(url) == shown
