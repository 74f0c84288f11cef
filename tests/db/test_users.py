"""Users, keys, sessions and rate-limit windows in a real Postgres: what is stored, what expires, what counts."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime

import anyio
import pytest
from psycopg.rows import scalar_row

from gateway.db import Pool, UserStore
from gateway.errors import InvalidRequestError

pytestmark = pytest.mark.anyio

YEAR_S = 365 * 24 * 3600.0
"""A window no test run crosses the end of."""


@pytest.fixture
def store(pool: Pool) -> UserStore:
    return UserStore(pool)


async def count_rows(pool: Pool, table: str) -> int:
    sql = {"http_session": "SELECT count(*) FROM http_session", "users": "SELECT count(*) FROM users",
           "rate_limit_window": "SELECT count(*) FROM rate_limit_window"}[table]
    async with pool.connection() as conn:
        return int(await (await conn.cursor(row_factory=scalar_row).execute(sql)).fetchone() or 0)


async def test_an_added_user_is_found_by_name_and_by_key_prefix_with_its_hash(store: UserStore) -> None:
    added = await store.add("ada", role="admin", key_hash="$argon2id$h1", key_prefix="ac_aaaaaaaa")
    assert added is not None and added.username == "ada" and added.role == "admin"
    assert added.key_prefix == "ac_aaaaaaaa" and added.revoked_at is None and added.key_created_at is not None
    assert await store.get("ada") == added
    assert await store.get("nobody") is None
    record = await store.find_key("ac_aaaaaaaa")
    assert record is not None
    assert (record.user_id, record.username, record.role, record.key_hash) == (added.id, "ada", "admin", "$argon2id$h1")
    assert record.revoked_at is None
    assert await store.find_key("ac_zzzzzzzz") is None


async def test_the_list_is_by_username_and_carries_no_hash(store: UserStore) -> None:
    await store.add("zoe", role="user", key_hash="h-zoe", key_prefix="ac_zzzzzzzz")
    await store.add("bob", role="ops", key_hash="h-bob", key_prefix="ac_bbbbbbbb")
    users = await store.list()
    assert [(u.username, u.role, u.key_prefix) for u in users] == [("bob", "ops", "ac_bbbbbbbb"),
                                                                   ("zoe", "user", "ac_zzzzzzzz")]
    assert not any(str(value).startswith("h-") for user in users for value in dataclasses.astuple(user))


async def test_a_taken_username_is_refused_and_a_taken_prefix_adds_nothing(pool: Pool, store: UserStore) -> None:
    await store.add("ada", role="user", key_hash="h1", key_prefix="ac_aaaaaaaa")
    with pytest.raises(InvalidRequestError, match="'ada' already exists"):
        await store.add("ada", role="user", key_hash="h2", key_prefix="ac_bbbbbbbb")
    assert await store.add("bob", role="user", key_hash="h3", key_prefix="ac_aaaaaaaa") is None
    assert await store.get("bob") is None
    assert await count_rows(pool, "users") == 1


async def test_revoke_sets_only_revoked_at_and_keeps_the_first_date(store: UserStore) -> None:
    added = await store.add("ada", role="user", key_hash="h1", key_prefix="ac_aaaaaaaa")
    revoked = await store.revoke("ada")
    assert added is not None and revoked is not None and revoked.revoked_at is not None
    assert (revoked.key_prefix, revoked.key_created_at, revoked.role) == (added.key_prefix, added.key_created_at,
                                                                          added.role)
    record = await store.find_key("ac_aaaaaaaa")
    assert record is not None and record.key_hash == "h1" and record.revoked_at == revoked.revoked_at
    again = await store.revoke("ada")
    assert again is not None and again.revoked_at == revoked.revoked_at
    assert await store.revoke("nobody") is None


async def test_rotate_replaces_hash_and_prefix_and_lifts_a_revoke(store: UserStore) -> None:
    await store.add("ada", role="user", key_hash="h1", key_prefix="ac_aaaaaaaa")
    await store.add("bob", role="user", key_hash="h2", key_prefix="ac_bbbbbbbb")
    await store.revoke("ada")
    rotated = await store.rotate("ada", key_hash="h3", key_prefix="ac_cccccccc")
    assert rotated is not None and rotated.key_prefix == "ac_cccccccc" and rotated.revoked_at is None
    assert await store.find_key("ac_aaaaaaaa") is None
    record = await store.find_key("ac_cccccccc")
    assert record is not None and record.key_hash == "h3" and record.username == "ada"


async def test_rotate_to_a_taken_prefix_or_of_an_unknown_user_changes_nothing(store: UserStore) -> None:
    await store.add("ada", role="user", key_hash="h1", key_prefix="ac_aaaaaaaa")
    await store.add("bob", role="user", key_hash="h2", key_prefix="ac_bbbbbbbb")
    assert await store.rotate("ada", key_hash="h3", key_prefix="ac_bbbbbbbb") is None
    assert await store.rotate("nobody", key_hash="h3", key_prefix="ac_dddddddd") is None
    record = await store.find_key("ac_aaaaaaaa")
    assert record is not None and record.key_hash == "h1"
    assert await store.find_key("ac_dddddddd") is None


async def test_a_session_has_an_owner_until_it_expires_or_the_user_is_revoked(store: UserStore) -> None:
    ada = await store.add("ada", role="user", key_hash="h1", key_prefix="ac_aaaaaaaa")
    assert ada is not None
    expires_at = await store.open_session("s-live", ada.id)
    assert (expires_at - datetime.now(UTC)).total_seconds() == pytest.approx(24 * 3600, abs=60)
    await store.open_session("s-gone", ada.id, -1)
    assert await store.session_owner("s-live") == ada.id
    assert await store.session_owner("s-gone") is None
    assert await store.session_owner("s-unknown") is None
    await store.revoke("ada")
    assert await store.session_owner("s-live") is None


async def test_twenty_concurrent_hits_count_one_to_twenty_each_once(store: UserStore) -> None:
    counts: list[int] = []
    ends: set[datetime] = set()

    async def hit() -> None:
        count, end = await store.count_hit("ac_aaaaaaaa", YEAR_S)
        counts.append(count)
        ends.add(end)

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(hit)
    assert sorted(counts) == list(range(1, 21))
    assert len(ends) == 1 and ends.pop() > datetime.now(UTC)
    assert (await store.count_hit("ac_bbbbbbbb", YEAR_S))[0] == 1


async def test_windows_are_aligned_on_the_epoch(store: UserStore) -> None:
    _, end = await store.count_hit("ac_aaaaaaaa", 60)
    assert end.timestamp() % 60 == 0
    assert 0 < (end - datetime.now(UTC)).total_seconds() <= 60


async def test_prune_deletes_expired_sessions_and_windows_in_batches_and_nothing_else(
    pool: Pool, store: UserStore
) -> None:
    ada = await store.add("ada", role="user", key_hash="h1", key_prefix="ac_aaaaaaaa")
    assert ada is not None
    for i in range(7):
        await store.open_session(f"old-{i}", ada.id, -1)
    await store.open_session("live", ada.id, 3600)
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO rate_limit_window (key_prefix, window_start, count, expires_at) "
                           "SELECT 'ac_' || n, now() - interval '2 hours', 1, now() - interval '1 hour' "
                           "FROM generate_series(1, 5) n")
    await store.count_hit("ac_aaaaaaaa", YEAR_S)
    assert await store.prune_expired(batch=2) == {"http_session": 7, "rate_limit_window": 5}
    assert await count_rows(pool, "http_session") == 1
    assert await count_rows(pool, "rate_limit_window") == 1
    assert await store.prune_expired() == {"http_session": 0, "rate_limit_window": 0}


async def test_a_deleted_user_takes_its_sessions_along(pool: Pool, store: UserStore) -> None:
    ada = await store.add("ada", role="user", key_hash="h1", key_prefix="ac_aaaaaaaa")
    assert ada is not None
    await store.open_session(str(uuid.uuid4()), ada.id, 3600)
    async with pool.connection() as conn:
        await conn.execute("DELETE FROM users")
    assert await count_rows(pool, "http_session") == 0
