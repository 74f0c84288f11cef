"""The search service's word index: rebuilt only when the tools' texts change, and never left on a stale build."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable
from typing import ClassVar

import anyio
import pytest

from gateway.db import ToolStore
from gateway.embed import OnnxEmbedder, load_embedder
from gateway.models import ToolDef
from gateway.services import Indexer
from gateway.services import search as search_module
from gateway.services.lexical import Bm25Index
from gateway.services.search import SearchService

pytestmark = pytest.mark.anyio

TOOLS = [
    ToolDef(server="s", name="get_forecast", description="Weather forecast for a city"),
    ToolDef(server="s", name="send_email", description="Send an email"),
]


class Spied(Bm25Index):
    """A real `Bm25Index` that records each build; a build whose texts mention `slow` says it started and then
    waits until the test releases it."""

    builds: ClassVar[list[dict[str, str]]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()
    slow_started: ClassVar[threading.Event] = threading.Event()
    release: ClassVar[threading.Event] = threading.Event()

    def __init__(self, documents: Iterable[tuple[str, str]]) -> None:
        docs = dict(documents)
        with Spied.lock:
            Spied.builds.append(docs)
        if any("slow" in text for text in docs.values()):
            Spied.slow_started.set()
            assert Spied.release.wait(10), "the test never released the slow build"
        super().__init__(docs.items())


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    Spied.builds = []
    Spied.slow_started = threading.Event()
    Spied.release = threading.Event()
    monkeypatch.setattr(search_module, "Bm25Index", Spied)
    return Spied.builds


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return load_embedder()


def service(tool_store: ToolStore, embedder: OnnxEmbedder) -> SearchService:
    """A fresh service; the empty index it starts with is not counted as a build."""
    made = SearchService(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2))
    Spied.builds.clear()
    return made


async def test_the_same_tools_again_rebuild_nothing_and_a_changed_text_rebuilds(
    tool_store: ToolStore, embedder: OnnxEmbedder, spied: list[dict[str, str]]
) -> None:
    search = service(tool_store, embedder)

    await search.set_tools(TOOLS)
    await search.set_tools(list(reversed(TOOLS)))  # same tools, another order: a restart's re-listing
    assert len(spied) == 1

    changed = [TOOLS[0], dataclasses.replace(TOOLS[1], description="Send an email or a text message")]
    await search.set_tools(changed)
    assert len(spied) == 2
    assert spied[-1]["s:send_email"] == "send_email | s server: Send an email or a text message"
    assert [tool for tool, _ in search._lexical.search("text message", limit=5)] == ["s:send_email"]


async def test_of_two_overlapping_builds_the_one_asked_for_last_is_kept(
    tool_store: ToolStore, embedder: OnnxEmbedder, spied: list[dict[str, str]]
) -> None:
    search = service(tool_store, embedder)
    slow = [*TOOLS, ToolDef(server="s", name="old_tool", description="slow to index")]
    fresh = [*TOOLS, ToolDef(server="s", name="new_tool", description="quick to index")]

    async with anyio.create_task_group() as tg:
        tg.start_soon(search.set_tools, slow)
        await anyio.to_thread.run_sync(Spied.slow_started.wait, 10)  # the slow build is running in its thread
        await search.set_tools(fresh)  # built and kept while the slow one still runs
        assert "s:new_tool" in search._lexical.ids
        Spied.release.set()

    assert len(spied) == 2  # both were built; the slow one finished last
    assert "s:new_tool" in search._lexical.ids and "s:old_tool" not in search._lexical.ids


async def test_a_listing_not_yet_indexed_is_found_by_its_words_and_the_answer_says_the_index_is_incomplete(
    tool_store: ToolStore, embedder: OnnxEmbedder
) -> None:
    indexed, waiting = TOOLS[0], ToolDef(server="mail", name="send_email", description="Send an email")
    await Indexer(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2)).sync("s", [indexed])
    unindexed = ["mail"]
    made = SearchService(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2),
                         unindexed=lambda: unindexed)
    await made.set_tools([indexed, waiting])
    early = await made.search("send an email to my boss", limit=2)
    assert early.hits[0].tool_id == "mail:send_email"
    assert early.incomplete == ("the index is not complete yet, listed but not yet indexed: the tools of mail, found "
                                "by their words only; search again in a few seconds for a complete answer")
    unindexed.clear()
    assert (await made.search("send an email to my boss", limit=2)).incomplete is None


async def test_a_lifted_servers_tools_that_did_not_come_up_are_fetched_and_ranked_with_it(
    tool_store: ToolStore, embedder: OnnxEmbedder
) -> None:
    tools = [
        ToolDef(server="mail", name="send_email", description="Send an email to a recipient"),
        ToolDef(server="mail", name="quota", description="How much storage is left"),
        *[ToolDef(server="chat", name=f"post_{n}", description=f"Post a message to channel {n}") for n in range(40)],
    ]
    indexer = Indexer(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2))
    for server in ("mail", "chat"):
        await indexer.sync(server, [t for t in tools if t.server == server])
    ranked = {}
    for lift in (0.0, 0.5):
        made = SearchService(index=tool_store, embedder=embedder, limiter=anyio.CapacityLimiter(2),
                             weights=dataclasses.replace(search_module.DEFAULT_WEIGHTS, server_lift=lift))
        await made.set_tools(tools)
        ranked[lift] = [r.tool_id for r in (await made.search("send an email to Bob", limit=5)).ranked]
    assert "mail:quota" not in ranked[0.0]  # nothing about storage: not even a candidate
    assert ranked[0.5][:2] == ["mail:send_email", "mail:quota"]  # fetched with its server, lifted above chat
