"""Capabilities match a query by intent similarity times their transitive reliability, over the real store."""

from __future__ import annotations

from collections.abc import Callable

import anyio
import pytest

from gateway.db import CapabilityStore, LearningStore
from gateway.embed import OnnxEmbedder, load_embedder
from gateway.services.capabilities import RELIABILITY_FLOOR, CapabilityService
from tests.db.test_capabilities import embedding, recorded

pytestmark = pytest.mark.anyio


Usage = dict[str, tuple[int, int]]


@pytest.fixture(scope="module")
def embedder() -> OnnxEmbedder:
    return load_embedder(None)


@pytest.fixture
def service(
    capability_store: CapabilityStore, learning_store: LearningStore, embedder: OnnxEmbedder
) -> Callable[[Usage], CapabilityService]:
    """A capability service over the real stores and model, with the given tool usage (calls, successes)."""

    def make(usage: Usage) -> CapabilityService:
        return CapabilityService(store=capability_store, edges=learning_store, embedder=embedder,
                                 limiter=anyio.CapacityLimiter(1), tool_usage=lambda t: usage.get(t, (0, 0)))

    return make


async def test_the_nearest_reliable_capability_comes_first_with_similarity_times_reliability(
    capability_store: CapabilityStore, service: Callable[[Usage], CapabilityService]
) -> None:
    near = await recorded(capability_store, "near", axis=0)
    for success in (True, True, False):
        await recorded(capability_store, "near", success=success, axis=0)
    far = await recorded(capability_store, "far", axis=1, tools=["git:log"])
    query = embedding(0) * 0.6 + embedding(1) * 0.8
    matches = await service({}).match(query, limit=5)
    assert [(m.row.id, round(m.similarity, 3), m.reliability) for m in matches] == [
        (far.id, 0.8, 1.0), (near.id, 0.6, 0.75)]
    support = 0.6**4 / (0.6**4 + 0.8**4)
    assert matches[1].support == pytest.approx(support, abs=1e-3)
    assert matches[1].score == pytest.approx(0.6 * support**0.5 * 0.75, abs=1e-3)
    assert matches[0].score == pytest.approx(0.8 * (1 - support) ** 0.5, abs=1e-3)


async def test_every_intent_a_capability_served_matches_it_and_the_nearest_ones_vote(
    capability_store: CapabilityStore, service: Callable[[Usage], CapabilityService]
) -> None:
    asked_twice = await recorded(capability_store, "two intents", axis=0)
    await capability_store.record(
        pattern_hash=asked_twice.pattern_hash, document=asked_twice.document, tools=asked_twice.tools,
        parameters_schema={"type": "object"}, embedding=embedding(2), success=True, duration_ms=1.0,
        namespace="code", action="x", cacheable=False, intent_key="second")
    other = await recorded(capability_store, "one intent", axis=1, tools=["git:log"])
    by_second = await service({}).match(embedding(2), limit=5)
    assert by_second[0].row.id == asked_twice.id and by_second[0].similarity == pytest.approx(1.0, abs=1e-4)
    between = (embedding(0) + embedding(1) + embedding(2)) / 3**0.5  # as near each of the three intents
    votes = {m.row.id: m.support for m in await service({}).match(between, limit=5)}
    assert votes[asked_twice.id] == pytest.approx(2 / 3, abs=1e-3) and votes[other.id] == pytest.approx(1 / 3, abs=1e-3)


async def test_a_capability_over_an_unreliable_tool_is_hidden_and_a_server_filter_keeps_its_own(
    capability_store: CapabilityStore, service: Callable[[Usage], CapabilityService]
) -> None:
    await recorded(capability_store, "flaky", axis=0, tools=["fs:read_file", "json:parse"])
    steady = await recorded(capability_store, "steady", axis=0, tools=["git:log"])
    usage = {"json:parse": (10, 4)}  # a 40% success rate, under the floor
    assert 0.4 < RELIABILITY_FLOOR
    matches = await service(usage).match(embedding(0), limit=5)
    assert [m.row.id for m in matches] == [steady.id]
    by_git = await service({}).match(embedding(0), limit=5, server="git")
    assert [m.row.id for m in by_git] == [steady.id]  # the other one also uses json:parse, not only fs
    assert await service({}).match(embedding(0), limit=5, server="fs") == []


async def test_a_capability_calling_an_unreliable_capability_inherits_its_rate(
    capability_store: CapabilityStore, service: Callable[[Usage], CapabilityService]
) -> None:
    inner = await recorded(capability_store, "inner", axis=1, tools=["git:log"])
    for _ in range(3):
        await recorded(capability_store, "inner", success=False, axis=1)
    outer = await recorded(capability_store, "outer", axis=0, tools=[str(inner.id), "fs:read_file"])
    matches = await service({}).match(embedding(0), limit=5)
    assert outer.id not in [m.row.id for m in matches]
