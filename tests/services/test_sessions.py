"""Who opened an HTTP session, from Postgres, and from memory while Postgres cannot say (a real outage)."""

from __future__ import annotations

import anyio
import anyio.to_thread
import pytest

from gateway.db.embedded import EmbeddedPostgres
from gateway.db.pool import Pool
from gateway.db.users import UserStore
from gateway.errors import DatabaseUnavailableError
from gateway.services.auth import Principal
from gateway.services.sessions import SessionOwners
from tests.db.test_outage import pool, stoppable  # noqa: F401 - the fixtures
from tests.eventually import eventually

pytestmark = pytest.mark.anyio


async def principal_of(store: UserStore, name: str) -> Principal:
    row = await store.add(name, role="user", key_hash=f"hash-{name}", key_prefix=f"ac_{name:0<8}")
    assert row is not None
    return Principal(user_id=str(row.id), username=name, role="user", key_prefix=f"ac_{name:0<8}")


async def test_a_session_belongs_to_who_opened_it_and_outlives_an_outage_in_memory(
    stoppable: EmbeddedPostgres, pool: Pool  # noqa: F811
) -> None:
    store = UserStore(pool)
    alice, bob = await principal_of(store, "alice"), await principal_of(store, "bob")
    owners = SessionOwners(store, kept=2)
    await owners.opened("s-alice", alice)
    assert await owners.owner("s-alice") == alice.user_id
    assert await owners.owner("s-unknown") is None
    await anyio.to_thread.run_sync(stoppable.stop)
    await owners.opened("s-bob", bob)  # the database is away: kept in memory only
    assert await owners.owner("s-alice") == alice.user_id and await owners.owner("s-bob") == bob.user_id
    with pytest.raises(DatabaseUnavailableError):
        await owners.owner("s-unknown")  # nobody here can say
    await anyio.to_thread.run_sync(stoppable.start)

    async def asked() -> str | None:
        try:
            return await owners.owner("s-bob")
        except DatabaseUnavailableError:
            return None

    bob_after = await eventually(asked, timeout_s=30, interval_s=0.2, what="the owner of s-bob, Postgres back")
    assert bob_after == bob.user_id  # not in Postgres, but opened here while it was away
    assert await owners.owner("s-alice") == alice.user_id
