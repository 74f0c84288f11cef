"""API keys against a real Postgres: a key authenticates until revoked or rotated, every failure reads the same,
verified keys cost one lookup and no Argon2 work, and the rate limiter counts fixed windows."""

from __future__ import annotations

import anyio
import pytest
from argon2 import PasswordHasher

from gateway.db import KeyRecord, Pool, UserStore
from gateway.errors import AuthenticationError, InvalidRequestError
from gateway.services import auth
from gateway.services.auth import Authenticator, Principal, RateLimiter, create_user, new_api_key, rotate_key
from tests.eventually import eventually

pytestmark = pytest.mark.anyio


class CountingHasher(PasswordHasher):
    """The real hasher, counting its verifications."""

    verifications = 0

    def verify(self, hash: str | bytes, password: str | bytes) -> bool:
        self.verifications += 1
        return super().verify(hash, password)


class CountingStore:
    """The real store, counting key lookups."""

    def __init__(self, store: UserStore) -> None:
        self.store = store
        self.lookups = 0

    async def find_key(self, key_prefix: str) -> KeyRecord | None:
        self.lookups += 1
        return await self.store.find_key(key_prefix)


@pytest.fixture
def store(pool: Pool) -> UserStore:
    return UserStore(pool)


def bearer(key: str) -> str:
    return f"Bearer {key}"


async def refused(authenticator: Authenticator, authorization: str | None) -> str:
    """The reason `authorization` is refused, after checking the message tells nothing of it."""
    with pytest.raises(AuthenticationError) as caught:
        await authenticator.authenticate(authorization)
    assert str(caught.value) == "missing, malformed, unknown or revoked API key"
    return caught.value.reason


def test_a_new_key_is_ac_and_32_url_safe_characters_and_keys_differ() -> None:
    keys = {new_api_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(len(key) == 35 and key.startswith("ac_") for key in keys)
    assert all(set(key[3:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") for key in keys)
    assert auth.key_prefix("ac_12345678rest") == "ac_12345678"


async def test_a_real_key_authenticates_as_its_user(store: UserStore) -> None:
    key = await create_user(store, "ada", role="admin")
    user = await store.get("ada")
    assert user is not None
    principal = await Authenticator(store).authenticate(bearer(key))
    assert principal == Principal(user_id=user.id, username="ada", role="admin", key_prefix=key[:11])
    assert await Authenticator(store).authenticate(f"bearer   {key}  ") == principal


async def test_every_failure_has_the_same_message_and_its_own_reason(store: UserStore) -> None:
    key = await create_user(store, "ada")
    revoked = await create_user(store, "bob")
    await store.revoke("bob")
    wrong_secret = key[:11] + ("A" if key[11] != "A" else "B") + key[12:]
    authenticator = Authenticator(store)
    cases = {
        None: "missing", "": "missing", "   ": "missing",
        f"Basic {key}": "malformed", key: "malformed", "Bearer": "malformed", "Bearer ac_short": "malformed",
        f"Bearer xx_{key[3:]}": "malformed", f"Bearer {key}!": "malformed", f"Bearer {key[:-1]}*": "malformed",
        bearer(new_api_key()): "unknown",
        bearer(wrong_secret): "mismatch",
        bearer(revoked): "revoked",
    }
    assert {case: await refused(authenticator, case) for case in cases} == cases


async def test_an_unknown_prefix_costs_an_argon2_verification_like_a_known_one(store: UserStore) -> None:
    hasher = CountingHasher()
    await refused(Authenticator(store, hasher=hasher), bearer(new_api_key()))
    assert hasher.verifications == 1


async def test_a_rotated_key_replaces_the_old_one(store: UserStore) -> None:
    old = await create_user(store, "ada")
    authenticator = Authenticator(store)
    await authenticator.authenticate(bearer(old))
    new = await rotate_key(store, "ada")
    assert new != old
    assert await refused(authenticator, bearer(old)) == "unknown"
    assert (await authenticator.authenticate(bearer(new))).username == "ada"


async def test_rotating_lifts_a_revoke_and_an_unknown_user_cannot_be_rotated(store: UserStore) -> None:
    await create_user(store, "ada")
    await store.revoke("ada")
    key = await rotate_key(store, "ada")
    assert (await Authenticator(store).authenticate(bearer(key))).username == "ada"
    with pytest.raises(InvalidRequestError, match="no user 'nobody'"):
        await rotate_key(store, "nobody")


async def test_repeated_requests_cost_one_lookup_each_and_argon2_once(store: UserStore) -> None:
    key = await create_user(store, "ada")
    hasher, counting = CountingHasher(), CountingStore(store)
    authenticator = Authenticator(counting, hasher=hasher)
    for _ in range(5):
        await authenticator.authenticate(bearer(key))
    assert (counting.lookups, hasher.verifications) == (5, 1)


async def test_the_verification_cache_does_not_survive_a_revoke(store: UserStore) -> None:
    key = await create_user(store, "ada")
    authenticator = Authenticator(store)
    await authenticator.authenticate(bearer(key))
    await authenticator.authenticate(bearer(key))
    await store.revoke("ada")
    assert await refused(authenticator, bearer(key)) == "revoked"


async def test_a_prefix_collision_draws_another_key(store: UserStore, monkeypatch: pytest.MonkeyPatch) -> None:
    first = await create_user(store, "ada")
    draws = iter([first[:11] + "x" * 24, new_api_key()])
    monkeypatch.setattr(auth, "new_api_key", lambda: next(draws))
    second = await create_user(store, "bob")
    assert second[:11] != first[:11]
    assert (await Authenticator(store).authenticate(bearer(second))).username == "bob"


async def test_a_taken_username_or_an_invalid_role_is_refused(store: UserStore) -> None:
    await create_user(store, "ada")
    with pytest.raises(InvalidRequestError, match="already exists"):
        await create_user(store, "ada")
    with pytest.raises(InvalidRequestError, match="invalid role"):
        await create_user(store, "bob", role="root")
    with pytest.raises(InvalidRequestError, match="invalid username"):
        await create_user(store, "bob smith")


def principal(prefix: str) -> Principal:
    return Principal(user_id="u", username="u", role="user", key_prefix=prefix)


async def test_the_limiter_allows_limit_requests_then_says_when_the_window_ends(store: UserStore) -> None:
    limiter = RateLimiter(store, limit=3)
    assert [await limiter.check(principal("ac_aaaaaaaa")) for _ in range(3)] == [None, None, None]
    retry_after = await limiter.check(principal("ac_aaaaaaaa"))
    assert retry_after is not None and 1 <= retry_after <= 3600
    assert await limiter.check(principal("ac_bbbbbbbb")) is None


async def test_a_limit_of_zero_is_no_limit(store: UserStore) -> None:
    limiter = RateLimiter(store, limit=0, window_s=1)
    assert {await limiter.check(principal("ac_aaaaaaaa")) for _ in range(10)} == {None}


async def test_after_retry_after_seconds_a_new_window_allows_again(store: UserStore) -> None:
    limiter = RateLimiter(store, limit=1, window_s=1)
    with anyio.fail_after(10):
        # the first request of a window goes, its second does not (asked back to back: no pause between)
        retry_after = await eventually(lambda: limiter.check(principal("ac_aaaaaaaa")), timeout_s=10, interval_s=0,
                                       what="a request refused in its window")
        assert retry_after == 1.0  # at most a second is left, and Retry-After is at least 1
        await anyio.sleep(retry_after)
        assert await limiter.check(principal("ac_aaaaaaaa")) is None
