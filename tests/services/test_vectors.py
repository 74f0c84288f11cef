"""The in-memory copy of the tool embeddings: its pools match a brute-force ranking, and a search over it ranks
exactly as one over pgvector, and sees tools embedded after it was read."""

from __future__ import annotations

import anyio
import numpy as np
import pytest

from gateway.db import ToolStore
from gateway.embed import OnnxEmbedder, load_embedder
from gateway.models import ToolDef
from gateway.services import Indexer
from gateway.services.search import SearchService
from gateway.services.vectors import CHUNK_ROWS, ToolVectors

pytestmark = pytest.mark.anyio


def unit_rows(count: int, seed: int = 7) -> np.ndarray:
    rows = np.random.default_rng(seed).normal(size=(count, 16)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_a_pool_holds_the_nearest_tools_with_their_cosine_and_the_extra_ones() -> None:
    count = CHUNK_ROWS * 2 + 5  # several blocks, the last one short
    matrix = unit_rows(count)
    ids = [f"s{i % 3}:t{i:05d}" for i in range(count)]
    vectors = ToolVectors(ids, matrix, "m")
    query = matrix[11] * 0.6 + matrix[900] * 0.4
    query /= np.linalg.norm(query)
    exact = matrix @ query

    found = vectors.pool(query, size=10, extra=[ids[3], "s9:unknown"])

    nearest = {ids[i] for i in np.argsort(-exact)[:10]}
    assert nearest <= set(found) and len(found) == 12
    assert all(found[ids[i]] == pytest.approx(float(exact[i]), abs=1e-5) for i in range(count) if ids[i] in found)
    assert found["s9:unknown"] == 0.0
    assert ids[11] in nearest and ids[900] in nearest


def test_a_pool_of_one_server_holds_only_its_tools_and_size_zero_only_the_extra_ones() -> None:
    matrix = unit_rows(300)
    ids = [f"s{i % 3}:t{i:03d}" for i in range(300)]
    vectors = ToolVectors(ids, matrix, "m")

    mine = vectors.pool(matrix[4], size=5, server="s1")
    extra = vectors.pool(matrix[4], size=0, extra=[ids[4]])

    assert len(mine) == 5 and all(t.startswith("s1:") for t in mine)
    assert max(mine, key=mine.__getitem__) == ids[4]  # t004 is on s1, and nearest to itself
    assert extra == {ids[4]: pytest.approx(1.0, abs=1e-5)}


CATALOG = [
    ToolDef(server="weather", name="get_forecast", description="Weather forecast for a city, days ahead"),
    ToolDef(server="weather", name="get_alerts", description="Severe weather alerts for a region"),
    ToolDef(server="mail", name="send_email", description="Send an email to a recipient"),
    ToolDef(server="mail", name="list_inbox", description="List the messages in the inbox"),
    ToolDef(server="files", name="read_file", description="Read the contents of a text file"),
    ToolDef(server="files", name="write_file", description="Write text to a file, replacing it"),
]
QUERIES = ["will it rain in Paris tomorrow", "email Bob the report", "show me what's in notes.txt",
           "any storm warnings near me?"]


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return load_embedder()


async def indexed(tool_store: ToolStore, embedder: OnnxEmbedder, tools: list[ToolDef]) -> None:
    indexer = Indexer(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2))
    for server in dict.fromkeys(t.server for t in tools):
        await indexer.sync(server, [t for t in tools if t.server == server])


async def test_the_in_memory_copy_ranks_exactly_as_pgvector(tool_store: ToolStore, embedder: OnnxEmbedder) -> None:
    await indexed(tool_store, embedder, CATALOG)
    held = SearchService(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2))
    asked = SearchService(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2), memory_limit=0)
    for service in (held, asked):
        await service.set_tools(CATALOG)

    for query in QUERIES:
        a, b = await held.search(query, limit=6), await asked.search(query, limit=6)
        assert [h.tool_id for h in a.hits] == [h.tool_id for h in b.hits], query
        assert [h.score for h in a.hits] == pytest.approx([h.score for h in b.hits], abs=1e-5)
        assert [h.semantic for h in a.hits] == pytest.approx([h.semantic for h in b.hits], abs=1e-5)
    assert held._vectors is not None and len(held._vectors) == len(CATALOG)
    assert asked._vectors is None


async def test_a_tool_embedded_after_the_copy_was_read_is_found_by_its_meaning(
    tool_store: ToolStore, embedder: OnnxEmbedder
) -> None:
    await indexed(tool_store, embedder, CATALOG)
    search = SearchService(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2))
    await search.set_tools(CATALOG)
    await search.search("will it rain in Paris tomorrow", limit=3)  # the copy is read: six tools
    added = ToolDef(server="calendar", name="create_event", description="Put a meeting in the calendar")

    await indexed(tool_store, embedder, [added])
    await search.set_tools([*CATALOG, added])
    search.vectors_changed()
    result = await search.search("book a meeting with Ann on Friday", limit=3)

    assert result.hits[0].tool_id == "calendar:create_event"
    assert result.hits[0].semantic > 0.2
