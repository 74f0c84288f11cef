"""The secret service on a real Postgres: per-user values, a cache of at most its TTL, and rotation."""

from __future__ import annotations

import pytest

from gateway.db import Pool
from gateway.db.secrets import SecretStore
from gateway.db.users import UserStore
from gateway.errors import InvalidRequestError
from gateway.services.secrets import CACHE_TTL_S, SecretService
from gateway.vault import generate_key_line, parse_keyring

pytestmark = pytest.mark.anyio
KEYS = parse_keyring(generate_key_line(), "test")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def user(pool: Pool, name: str) -> str:
    row = await UserStore(pool).add(name, role="user", key_hash="x", key_prefix=f"ac_{name}")
    assert row is not None
    return row.id


async def test_an_opened_secret_is_cached_for_at_most_ten_minutes(pool: Pool) -> None:
    clock, alice = Clock(), await user(pool, "alice")
    reader = SecretService(store=SecretStore(pool), keys=KEYS, clock=clock)
    writer = SecretService(store=SecretStore(pool), keys=KEYS)  # another gateway on the same database
    await writer.set(alice, "TOKEN", "first-value")
    assert await reader.get(alice, "TOKEN") == "first-value"
    await writer.set(alice, "TOKEN", "second-value")
    clock.now += CACHE_TTL_S - 1
    assert await reader.get(alice, "TOKEN") == "first-value"  # within the cache's ten minutes
    clock.now += 2
    assert await reader.get(alice, "TOKEN") == "second-value"
    assert CACHE_TTL_S <= 600


async def test_one_users_secret_is_not_another_users_and_names_are_checked(pool: Pool) -> None:
    alice, bob = await user(pool, "alice"), await user(pool, "bob")
    secrets = SecretService(store=SecretStore(pool), keys=KEYS)
    await secrets.set(alice, "TOKEN", "alice-value")
    assert await secrets.get(bob, "TOKEN") is None
    assert [e.name for e in await secrets.names(alice)] == ["TOKEN"] and await secrets.names(bob) == []
    with pytest.raises(InvalidRequestError, match="name"):
        await secrets.set(alice, "1-bad", "x")
    assert await secrets.delete(alice, "TOKEN") and await secrets.get(alice, "TOKEN") is None


async def test_a_rotation_rewraps_every_secret_and_each_still_opens(pool: Pool) -> None:
    alice, bob = await user(pool, "alice"), await user(pool, "bob")
    old_line, new_line = generate_key_line(), generate_key_line()
    before = SecretService(store=SecretStore(pool), keys=parse_keyring(old_line, "old"))
    for owner in (alice, bob):
        await before.set(owner, "TOKEN", f"value-of-{owner}")
    during = SecretService(store=SecretStore(pool), keys=parse_keyring(f"{old_line}\n{new_line}", "both"))
    done = await during.rotate()
    after = SecretService(store=SecretStore(pool), keys=parse_keyring(new_line, "new"))
    assert done.rewrapped == 2 and done.by_key == {new_line.partition(":")[0]: 2}
    assert [await after.get(owner, "TOKEN") for owner in (alice, bob)] == [f"value-of-{alice}", f"value-of-{bob}"]
    assert (await during.rotate()).rewrapped == 0  # nothing left under the old key
