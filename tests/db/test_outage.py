"""A Postgres that goes away: calls fail at once with the reason, telemetry and rate limits hold, and the pool is
whole again once it is back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import psycopg
import pytest

from gateway.db import open_pool
from gateway.db.embedded import EmbeddedPostgres
from gateway.db.learning import LearningStore
from gateway.db.memory import IntentMemory
from gateway.db.migrate import migrate
from gateway.db.pool import Pool
from gateway.db.users import UserStore
from gateway.errors import DatabaseUnavailableError
from gateway.services.auth import Principal, RateLimiter
from gateway.services.telemetry import SEARCH_LATENCY, Telemetry
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

BACK_WITHIN_S = 30.0
"""How long a test waits for the pool to find a restarted Postgres (it checks every second)."""


@pytest.fixture
async def stoppable(pg_dir: Path) -> AsyncIterator[EmbeddedPostgres]:
    """A Postgres of this test's own, migrated, that the test may stop and start again."""
    server = EmbeddedPostgres(pg_dir / "data")
    try:
        await migrate(await anyio.to_thread.run_sync(server.start))
        yield server
    finally:
        await anyio.to_thread.run_sync(server.stop)


@pytest.fixture
async def pool(stoppable: EmbeddedPostgres) -> AsyncIterator[Pool]:
    """The gateway's pool (two connections) on that Postgres."""
    pool = await open_pool(await anyio.to_thread.run_sync(stoppable.start), max_size=2)
    try:
        yield pool
    finally:
        await pool.close()


async def until_answering(memory: IntentMemory) -> int:
    async def answered() -> tuple[int] | None:  # in a tuple: a count of 0 is an answer too
        try:
            return (await memory.count(model_id="m"),)
        except DatabaseUnavailableError:
            return None

    (count,) = await eventually(answered, timeout_s=BACK_WITHIN_S, interval_s=0.2, what="an answer, Postgres back")
    return count


async def test_calls_fail_at_once_while_postgres_is_down_and_pass_again_once_it_is_back(
    stoppable: EmbeddedPostgres, pool: Pool
) -> None:
    memory = IntentMemory(pool)
    assert await memory.count(model_id="m") == 0
    assert pool.outage is None

    await anyio.to_thread.run_sync(stoppable.stop)
    with pytest.raises(DatabaseUnavailableError, match="counting past intents failed"):
        await memory.count(model_id="m")  # meets the connection the shutdown broke
    # The next calls do not wait out the pool's 30 s timeout: they are told why at once.
    for _ in range(3):
        with pytest.raises(DatabaseUnavailableError, match=r"counting past intents failed: the database is "
                           r"unreachable since \d\d:\d\d:\d\d UTC \(.+\); the gateway checks again every 1 s"):
            await memory.count(model_id="m")
    assert pool.outage is not None

    assert await anyio.to_thread.run_sync(stoppable.start) == pool.conninfo  # the same URL
    assert await until_answering(memory) == 0
    assert pool.outage is None
    assert pool.get_stats()["pool_available"] >= 1  # refilled, not left empty


async def test_a_connection_lost_while_postgres_stays_up_is_no_outage(stoppable: EmbeddedPostgres, pool: Pool) -> None:
    memory = IntentMemory(pool)
    with contextlib.suppress(psycopg.OperationalError):  # the session ends under its own query
        async with pool.connection() as conn:
            await conn.execute("SELECT pg_terminate_backend(pg_backend_pid())")  # it dies, not the server
    assert await memory.count(model_id="m") == 0  # the check connects: no outage, no error
    assert pool.outage is None


async def test_telemetry_rows_wait_for_the_database_instead_of_being_dropped(
    stoppable: EmbeddedPostgres, pool: Pool
) -> None:
    telemetry, store = Telemetry(), LearningStore(pool)
    await anyio.to_thread.run_sync(stoppable.stop)
    telemetry.observe(SEARCH_LATENCY, 5.0)
    telemetry.error("DatabaseError", "down")
    for _ in range(2):  # the broken connection, then the outage found
        await telemetry.flush(store)
        assert telemetry.pending == 2
    assert "pml_telemetry_dropped_total" not in telemetry.prometheus()

    await anyio.to_thread.run_sync(stoppable.start)

    async def flushed() -> bool:
        await telemetry.flush(store)
        return telemetry.pending == 0

    await eventually(flushed, timeout_s=BACK_WITHIN_S, interval_s=0.2, what="the queued telemetry written")
    async with pool.connection() as conn:
        metrics = await (await conn.execute("SELECT metric_name, value FROM metrics")).fetchall()
        errors = await (await conn.execute("SELECT error_type FROM error_log")).fetchall()
    assert (metrics, errors) == ([(SEARCH_LATENCY, 5.0)], [("DatabaseError",)])


async def test_the_rate_limit_holds_in_memory_while_postgres_is_down(stoppable: EmbeddedPostgres, pool: Pool) -> None:
    limits = RateLimiter(UserStore(pool), limit=2, window_s=60)
    alice = Principal(user_id="u1", username="alice", role="user", key_prefix="ac_alice000")
    await anyio.to_thread.run_sync(stoppable.stop)
    answers = [await limits.check(alice) for _ in range(3)]
    assert answers[:2] == [None, None]
    assert answers[2] is not None and 59 <= answers[2] <= 60


async def test_calls_made_together_as_postgres_goes_down_all_learn_it_at_once(
    stoppable: EmbeddedPostgres, pool: Pool
) -> None:
    memory = IntentMemory(pool)
    errors: list[str] = []

    async def count() -> None:
        try:
            await memory.count(model_id="m")
        except DatabaseUnavailableError as exc:
            errors.append(str(exc))

    await memory.count(model_id="m")
    await anyio.to_thread.run_sync(stoppable.stop)
    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(count)
    assert len(errors) == 6
    # None waited for a pooled connection (that wait ends after 30 s in "no database connection free").
    assert all("no database connection" not in e for e in errors), errors
    assert sum("the database is unreachable since" in e for e in errors) >= 4
