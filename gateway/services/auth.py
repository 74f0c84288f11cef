"""API keys: issuing them, authenticating a request's ``Authorization`` header, and rate-limiting its user.

A key is ``ac_`` and 32 URL-safe characters (192 random bits); its first 11 characters are its lookup prefix,
stored beside its Argon2id hash (argon2-cffi's `PasswordHasher`, RFC 9106 parameters). Authentication checks
the form, looks the prefix up, verifies the hash, then checks revocation; every failure raises the same
`AuthenticationError` (its `reason` is for the logs). The lookup runs on every request, so a revoke or rotate
made by another process counts from the next request on; the Argon2 work (about 0.1 s of CPU and 64 MiB) runs
in a worker thread under a small limiter, once per key: successful verifications are remembered in memory,
keyed by prefix, stored hash and the key's SHA-256, never by the key itself.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

import anyio
import anyio.to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gateway.errors import AuthenticationError, DatabaseError, DatabaseUnavailableError, InvalidRequestError
from gateway.lru import LRU

KEY_SCHEME = "ac_"
KEY_PREFIX_LENGTH = 11
"""``ac_`` and 8 random characters: the part of a key stored in clear, for lookup."""
_KEY_RANDOM_BYTES = 24
"""192 bits, 32 URL-safe characters."""
_KEY_RE = re.compile(r"ac_[A-Za-z0-9_-]{32}")
ADMIN_ROLE = "admin"
"""The role that reads what the gateway withholds from other users (a failing server's own words)."""
ROLES = ("user", ADMIN_ROLE, "ops")
_USERNAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
KEY_DRAWS = 5
"""New keys drawn when prefixes collide (one in 2**48 per existing key) before giving up."""
HASH_THREADS = 2
"""Argon2 computations at once; each holds 64 MiB."""
VERIFIED_CACHE_SIZE = 1024
OUTAGE_GRACE_S = 900.0
"""While the database is unreachable, a key found there within this many seconds is let in as it was then
(nobody can revoke it meanwhile: revoking writes to that database). Other keys get the outage's error."""


def new_api_key() -> str:
    """A fresh random API key: ``ac_`` and 32 URL-safe characters."""
    return KEY_SCHEME + secrets.token_urlsafe(_KEY_RANDOM_BYTES)


def key_prefix(key: str) -> str:
    """The lookup prefix of `key`: its first 11 characters."""
    return key[:KEY_PREFIX_LENGTH]


@dataclass(frozen=True, slots=True)
class Principal:
    """Who an authenticated request is: a user, by the key it used."""

    user_id: str
    username: str
    role: str
    key_prefix: str


class _KeyRecord(Protocol):
    @property
    def user_id(self) -> str: ...
    @property
    def username(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def key_hash(self) -> str: ...
    @property
    def revoked_at(self) -> datetime | None: ...


class KeyLookup(Protocol):
    async def find_key(self, key_prefix: str) -> _KeyRecord | None: ...


class Accounts(Protocol):
    async def add(self, username: str, *, role: str, key_hash: str, key_prefix: str) -> object | None: ...

    async def get(self, username: str) -> object | None: ...

    async def rotate(self, username: str, *, key_hash: str, key_prefix: str) -> object | None: ...


class HitCounter(Protocol):
    async def count_hit(self, key_prefix: str, window_s: float) -> tuple[int, datetime]: ...


class Authenticator:
    """Turns an ``Authorization: Bearer ac_...`` header into a `Principal`, or an `AuthenticationError`."""

    def __init__(self, store: KeyLookup, *, limiter: anyio.CapacityLimiter | None = None,
                 hasher: PasswordHasher | None = None) -> None:
        self._store = store
        self._limiter = limiter or anyio.CapacityLimiter(HASH_THREADS)
        self._hasher = hasher or PasswordHasher()
        self._verified: LRU[tuple[str, str, bytes], None] = LRU(VERIFIED_CACHE_SIZE)
        self._found: LRU[str, tuple[_KeyRecord, float]] = LRU(VERIFIED_CACHE_SIZE)
        self._dummy_hash: str | None = None

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of a valid, unrevoked key; else `AuthenticationError` (one message, a `reason`)."""
        key = _bearer_key(authorization)
        prefix = key_prefix(key)
        record = await self._find(prefix)
        if record is None:
            await self._verify(await self._dummy(), key)  # as slow as a known prefix: timing tells nothing
            raise AuthenticationError("unknown")
        if not await self._verified_before(prefix, record.key_hash, key):
            raise AuthenticationError("mismatch")
        if record.revoked_at is not None:
            raise AuthenticationError("revoked")
        return Principal(user_id=record.user_id, username=record.username, role=record.role, key_prefix=prefix)

    async def _find(self, prefix: str) -> _KeyRecord | None:
        """The stored key of `prefix`; while the database is unreachable, as it was found within `OUTAGE_GRACE_S`."""
        try:
            record = await self._store.find_key(prefix)
        except DatabaseUnavailableError:
            found = self._found.get(prefix)
            if found is None or time.monotonic() - found[1] > OUTAGE_GRACE_S:
                raise
            return found[0]
        self._found.pop(prefix, None)
        if record is not None:
            self._found[prefix] = (record, time.monotonic())
        return record

    async def _verified_before(self, prefix: str, key_hash: str, key: str) -> bool:
        """Whether `key` matches `key_hash`, from memory when this very pair was verified before."""
        entry = (prefix, key_hash, hashlib.sha256(key.encode()).digest())
        if entry in self._verified:
            self._verified.touch(entry)
            return True
        if not await self._verify(key_hash, key):
            return False
        self._verified[entry] = None
        return True

    async def _verify(self, key_hash: str, key: str) -> bool:
        return await anyio.to_thread.run_sync(_matches, self._hasher, key_hash, key, limiter=self._limiter)

    async def _dummy(self) -> str:
        """A hash of no key, made with the same parameters as the real ones (once)."""
        if self._dummy_hash is None:
            self._dummy_hash = await hash_key(secrets.token_urlsafe(_KEY_RANDOM_BYTES), hasher=self._hasher,
                                              limiter=self._limiter)
        return self._dummy_hash


class RateLimiter:
    """At most `limit` requests per key in each fixed window of `window_s` seconds (`limit` <= 0: no limit)."""

    def __init__(self, store: HitCounter, *, limit: int, window_s: float = 3600) -> None:
        if window_s <= 0:
            raise ValueError(f"window_s must be positive, not {window_s}")
        self._store = store
        self._limit = limit
        self._window_s = window_s
        self._here: dict[str, tuple[datetime, int]] = {}

    async def check(self, principal: Principal) -> float | None:
        """Count this request; None when it may go on, else the seconds until its window ends (at least 1)."""
        if self._limit <= 0:
            return None
        try:
            count, window_end = await self._store.count_hit(principal.key_prefix, self._window_s)
        except DatabaseUnavailableError:
            count, window_end = self._count_here(principal.key_prefix)
        if count <= self._limit:
            return None
        return max(1.0, (window_end - datetime.now(UTC)).total_seconds())


    def _count_here(self, prefix: str) -> tuple[int, datetime]:
        """Count in memory while the database is unreachable: a window of `window_s` from the key's first request
        of the outage (what the database counted before is not known here)."""
        now = datetime.now(UTC)
        window_end, count = self._here.get(prefix, (now, 0))
        if window_end <= now:
            window_end, count = now + timedelta(seconds=self._window_s), 0
        self._here[prefix] = (window_end, count + 1)
        return count + 1, window_end


async def create_user(store: Accounts, username: str, *, role: str = "user",
                      limiter: anyio.CapacityLimiter | None = None) -> str:
    """Add `username` with a new key and return the key (it is stored only hashed: show it once)."""
    _check_user(username, role)
    for _ in range(KEY_DRAWS):
        key = new_api_key()
        key_hash = await hash_key(key, limiter=limiter)
        if await store.add(username, role=role, key_hash=key_hash, key_prefix=key_prefix(key)) is not None:
            return key
    raise DatabaseError(f"no free API key prefix after {KEY_DRAWS} draws")


async def rotate_key(store: Accounts, username: str, *, limiter: anyio.CapacityLimiter | None = None) -> str:
    """Give `username` a new key, unrevoked, and return it; the old key stops working at once."""
    for _ in range(KEY_DRAWS):
        key = new_api_key()
        key_hash = await hash_key(key, limiter=limiter)
        if await store.rotate(username, key_hash=key_hash, key_prefix=key_prefix(key)) is not None:
            return key
        if await store.get(username) is None:
            raise InvalidRequestError(f"no user {username!r} (see `pml-gateway users list`)", field="username")
    raise DatabaseError(f"no free API key prefix after {KEY_DRAWS} draws")


async def hash_key(key: str, *, hasher: PasswordHasher | None = None,
                   limiter: anyio.CapacityLimiter | None = None) -> str:
    """The Argon2id hash of `key`, computed in a worker thread."""
    return await anyio.to_thread.run_sync((hasher or PasswordHasher()).hash, key, limiter=limiter)


def _check_user(username: str, role: str) -> None:
    if not _USERNAME_RE.fullmatch(username):
        raise InvalidRequestError(f"invalid username {username!r}: 1 to 64 letters, digits, '.', '_' or '-', "
                                  "starting with a letter or digit", field="username")
    if role not in ROLES:
        raise InvalidRequestError(f"invalid role {role!r}: one of {', '.join(ROLES)}", field="role")


def _bearer_key(authorization: str | None) -> str:
    """The key of a ``Bearer`` header of the right form; else `AuthenticationError` (missing or malformed)."""
    if authorization is None or not authorization.strip():
        raise AuthenticationError("missing")
    scheme, _, key = authorization.strip().partition(" ")
    key = key.strip()
    if scheme.lower() != "bearer" or not _KEY_RE.fullmatch(key):
        raise AuthenticationError("malformed")
    return key


def _matches(hasher: PasswordHasher, key_hash: str, key: str) -> bool:
    """Argon2 verification (constant-time in the key); a hash that does not parse matches nothing."""
    try:
        return hasher.verify(key_hash, key)
    except (VerificationError, InvalidHashError):
        return False
