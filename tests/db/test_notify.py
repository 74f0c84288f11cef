"""Gateways on one database hear each other learn: a committed run notifies, the listener passes on the others'."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
import psycopg
import pytest

from gateway.db import LearningStore, Pool
from gateway.db.notify import LearnedListener
from gateway.errors import DatabaseError
from gateway.graph import EDGE_TYPE_WEIGHT, SOURCE_FACTOR

pytestmark = pytest.mark.anyio

HEAR_TIMEOUT_S = 15.0


class Heard:
    """The listener's `on_change`: counts its calls, and lets a test wait for the n-th."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = anyio.Event()

    def __call__(self) -> None:
        self.count += 1
        self._changed.set()
        self._changed = anyio.Event()

    async def until(self, count: int) -> None:
        with anyio.fail_after(HEAR_TIMEOUT_S):
            while self.count < count:
                await self._changed.wait()


@asynccontextmanager
async def listening(url: str, origin: str) -> AsyncIterator[Heard]:
    """A running listener of `origin` (subscribed on entry), cancelled on exit."""
    heard = Heard()
    async with anyio.create_task_group() as tg:
        await tg.start(LearnedListener(url=url, origin=origin, on_change=heard).run)
        yield heard
        tg.cancel_scope.cancel()


async def learn(store: LearningStore, tool: str = "s:a", ms: float = 1.0) -> None:
    await store.record_run(edges=[("s:a", "s:b", "sequence")], tools=[(tool, True, ms)],
                           weights=dict(EDGE_TYPE_WEIGHT), factors=dict(SOURCE_FACTOR))


async def test_a_run_recorded_by_another_gateway_is_heard_and_ones_own_is_not(
    pool: Pool, database_url: str
) -> None:
    mine, theirs = LearningStore(pool, origin="gateway-a"), LearningStore(pool, origin="gateway-b")
    async with listening(database_url, "gateway-a") as heard:
        await learn(mine)
        await learn(theirs)
        await heard.until(1)
        await learn(mine)
        await learn(theirs)
        await heard.until(2)
    assert heard.count == 2  # notices come in commit order: had either of ours been heard, the count would be 3


async def test_a_rolled_back_run_notifies_nobody(pool: Pool, database_url: str) -> None:
    theirs = LearningStore(pool, origin="gateway-b")
    async with listening(database_url, "gateway-a") as heard:
        with pytest.raises(DatabaseError, match="out of range"):
            await learn(theirs, ms=1e30)
        await learn(theirs)
        await heard.until(1)
    assert heard.count == 1


async def test_a_dropped_connection_is_reopened_and_the_missed_news_is_caught_up(
    pool: Pool, database_url: str
) -> None:
    theirs = LearningStore(pool, origin="gateway-b")
    async with listening(database_url, "gateway-a") as heard:
        with psycopg.connect(database_url, autocommit=True) as admin:
            killed = admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                   "WHERE datname = current_database() AND query LIKE 'LISTEN%'").fetchall()
        assert killed == [(True,)]
        await heard.until(1)  # reconnected: whatever was sent meanwhile is lost, so it counts as news
        await learn(theirs)
        await heard.until(2)


async def test_each_store_has_its_own_origin_unless_given(pool: Pool) -> None:
    assert LearningStore(pool).origin != LearningStore(pool).origin
