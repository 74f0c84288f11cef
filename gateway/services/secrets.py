"""Each user's secrets: stored sealed, opened only for that user, cached in memory for at most ten minutes.

A secret is set, read, listed (names only) and deleted per user id; reading one that belongs to another user is
impossible by construction (the row is keyed by user, and the associated data binds the ciphertext to it). The
cache keeps opened values for `CACHE_TTL_S` (the seed's 10 minutes) and at most `CACHE_MAX` of them; a set or
delete drops the entry at once. `rotate` re-wraps, batch by batch, every data key that an older master key
wrapped: reads keep working through it, since the keyring holds the old keys until the operator retires them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from gateway.errors import InvalidRequestError
from gateway.lru import LRU
from gateway.vault import KeyWrapper, Sealed, associated_data, open_sealed, rewrap, seal

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
CACHE_TTL_S = 600.0
CACHE_MAX = 1_000
MAX_VALUE_BYTES = 64 * 1024
REWRAP_BATCH = 200


class SecretPort(Protocol):
    async def put(self, user_id: str, name: str, sealed: Sealed) -> None: ...

    async def get(self, user_id: str, name: str) -> Sealed | None: ...

    async def names(self, user_id: str) -> Sequence[Any]: ...

    async def delete(self, user_id: str, name: str) -> bool: ...

    async def not_under(self, current_key_id: str, batch: int) -> Sequence[Any]: ...

    async def rewrapped(self, old: Any, new: Sealed) -> bool: ...

    async def by_key(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class Rotation:
    """What a rotation did: secrets re-wrapped, skipped (changed meanwhile: already under the new key), and how
    many each master key wraps now."""

    rewrapped: int
    skipped: int
    by_key: dict[str, int]


class SecretService:
    """Set, open, list, delete and re-wrap users' secrets."""

    def __init__(self, *, store: SecretPort, keys: KeyWrapper, ttl_s: float = CACHE_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._store = store
        self._keys = keys
        self._ttl_s = ttl_s
        self._clock = clock
        self._cache: LRU[tuple[str, str], tuple[float, str]] = LRU(CACHE_MAX)

    async def set(self, user_id: str, name: str, value: str) -> None:
        """Store `value` as the user's secret `name` (replacing it)."""
        check_name(name)
        data = value.encode()
        if not value or len(data) > MAX_VALUE_BYTES:
            raise InvalidRequestError(f"a secret's value must be 1 to {MAX_VALUE_BYTES} bytes", field="value")
        await self._store.put(user_id, name, seal(data, associated_data(user_id, name), self._keys))
        self._cache.pop((user_id, name), None)

    async def get(self, user_id: str, name: str) -> str | None:
        """The user's secret `name` in clear, or None when it has none of that name."""
        key = (user_id, name)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > self._clock():
            return cached[1]
        sealed = await self._store.get(user_id, name)
        if sealed is None:
            self._cache.pop(key, None)
            return None
        value = open_sealed(sealed, associated_data(user_id, name), self._keys).decode()
        self._cache[key] = (self._clock() + self._ttl_s, value)
        return value

    async def names(self, user_id: str) -> Sequence[Any]:
        """The user's secrets, by name, with their master key id and last change (never a value)."""
        return await self._store.names(user_id)

    async def delete(self, user_id: str, name: str) -> bool:
        self._cache.pop((user_id, name), None)
        return await self._store.delete(user_id, name)

    async def rotate(self) -> Rotation:
        """Re-wrap every data key an older master key wrapped under the current one."""
        done = skipped = 0
        while batch := await self._store.not_under(self._keys.current_id, REWRAP_BATCH):
            progress = 0
            for stored in batch:
                new = rewrap(stored.sealed, associated_data(stored.user_id, stored.name), self._keys)
                if await self._store.rewrapped(stored, new):
                    progress += 1
                else:
                    skipped += 1
            done += progress
            if not progress:  # rows rewritten meanwhile by a gateway that still wraps with an older key
                break
        return Rotation(done, skipped, await self._store.by_key())


def check_name(name: str) -> None:
    if not isinstance(name, str) or not NAME.match(name):
        raise InvalidRequestError("a secret's name is 1 to 64 letters, digits or _, not starting with a digit "
                                  f"(got {name!r})", field="name")
