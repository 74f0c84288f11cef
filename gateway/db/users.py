"""Users in Postgres: `UserStore` keeps users and their API keys, HTTP sessions and rate-limit windows.

A key itself is never stored, only its Argon2id hash (made by `gateway.services.auth`) and its lookup prefix;
`find_key` is the one read that returns the hash. Sessions and rate-limit windows expire; `prune_expired`
deletes the expired ones in small autocommit batches, like the retention prune. Every psycopg error surfaces
as a `DatabaseError` via `translated`, except a taken username, which is an `InvalidRequestError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row, scalar_row

from gateway.db.pool import Pool, translated
from gateway.db.queries import query as named_query
from gateway.errors import InvalidRequestError

SESSION_TTL_S = 24 * 3600.0
"""How long a session lasts unless told otherwise (the seed's 24 hours)."""
PRUNE_BATCH = 1_000
"""Rows one prune transaction deletes at most."""


@dataclass(frozen=True, slots=True)
class UserRow:
    """A user as listed: everything but the key hash."""

    id: str
    username: str
    role: str
    key_prefix: str | None
    key_created_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime
    github: bool = False
    """Signs in through GitHub (OAuth; `list` only tells)."""
    oidc: bool = False
    """Signs in through an OpenID Connect issuer (OAuth; `list` only tells)."""

    @property
    def sign_in(self) -> list[str]:
        """How the user signs in: ``key``, ``github``, ``oidc``."""
        ways = [("key", self.key_prefix is not None), ("github", self.github), ("oidc", self.oidc)]
        return [name for name, used in ways if used]


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """What authenticating a key needs: whose key it is and its hash."""

    user_id: str
    username: str
    role: str
    key_hash: str
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class _Hit:
    count: int
    window_end: datetime


class UserStore:
    """Users, API keys, sessions and rate-limit windows over the pool."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def add(self, username: str, *, role: str, key_hash: str, key_prefix: str) -> UserRow | None:
        """A new user with this key; None when `key_prefix` is taken (draw another key), an
        `InvalidRequestError` when `username` is."""
        params = {"username": username, "role": role, "key_hash": key_hash, "key_prefix": key_prefix}
        async with translated(f"adding user {username!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(UserRow))
            try:
                return await (await cursor.execute(named_query("insert_user"), params)).fetchone()
            except psycopg.errors.UniqueViolation as exc:  # the prefix is the ON CONFLICT target: the username
                raise InvalidRequestError(f"user {username!r} already exists", field="username") from exc

    async def get(self, username: str) -> UserRow | None:
        """The user called `username`, or None."""
        return await self._user("get_user", {"username": username}, f"reading user {username!r}")

    async def list(self) -> list[UserRow]:
        """Every user, by username."""
        async with translated("listing users"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(UserRow))
            return await (await cursor.execute(named_query("list_users"))).fetchall()

    async def find_key(self, key_prefix: str) -> KeyRecord | None:
        """The key whose lookup prefix is `key_prefix`, with its owner and hash, revoked or not; or None."""
        async with translated("looking up an API key"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(KeyRecord))
            return await (await cursor.execute(named_query("find_key"), {"key_prefix": key_prefix})).fetchone()

    async def revoke(self, username: str) -> UserRow | None:
        """Mark the user's key revoked (now, or when first revoked); hash and prefix stay. None if unknown."""
        return await self._user("revoke_user", {"username": username}, f"revoking user {username!r}")

    async def rotate(self, username: str, *, key_hash: str, key_prefix: str) -> UserRow | None:
        """Give the user this new key, not revoked; None when the user is unknown or `key_prefix` is taken."""
        params = {"username": username, "key_hash": key_hash, "key_prefix": key_prefix}
        return await self._user("rotate_key", params, f"rotating the key of {username!r}")

    async def open_session(self, session_id: str, user_id: str, ttl_s: float = SESSION_TTL_S) -> datetime:
        """Record a session of `user_id` that lasts `ttl_s` seconds (24 hours by default); when it expires."""
        params = {"session_id": session_id, "user_id": user_id, "ttl_s": float(ttl_s)}
        async with translated("opening a session"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            expires_at: datetime | None = await (await cursor.execute(named_query("open_session"), params)).fetchone()
        assert expires_at is not None  # INSERT ... RETURNING returns its row or raises
        return expires_at

    async def session_owner(self, session_id: str) -> str | None:
        """The id of the user whose unexpired session this is; None if expired, unknown or the user revoked."""
        async with translated("reading a session"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            owner: str | None = await (
                await cursor.execute(named_query("session_owner"), {"session_id": session_id})
            ).fetchone()
        return owner

    async def count_hit(self, key_prefix: str, window_s: float) -> tuple[int, datetime]:
        """Count one request of `key_prefix` in the current fixed window of `window_s` seconds, atomically:
        the requests counted in this window so far (this one included) and when the window ends."""
        params = {"key_prefix": key_prefix, "window_s": float(window_s)}
        async with translated("counting a request"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(_Hit))
            hit = await (await cursor.execute(named_query("count_hit"), params)).fetchone()
        assert hit is not None  # an upsert ... RETURNING always returns its row
        return hit.count, hit.window_end

    async def prune_expired(self, *, batch: int = PRUNE_BATCH) -> dict[str, int]:
        """Delete expired sessions and rate-limit windows, `batch` rows per transaction; the rows deleted."""
        return {
            "http_session": await self._drain("prune_expired_sessions", batch),
            "rate_limit_window": await self._drain("prune_expired_windows", batch),
        }

    async def _drain(self, name: str, batch: int) -> int:
        """Run the prune `name` batch after batch until one deletes fewer than a full batch."""
        total = 0
        while True:
            async with translated(f"pruning ({name})"), self._pool.connection() as conn:
                count = max((await conn.execute(named_query(name), {"batch": batch})).rowcount, 0)
            total += count
            if count < batch:
                return total

    async def _user(self, name: str, params: dict[str, Any], action: str) -> UserRow | None:
        """Run the named query `name` and return its one `UserRow`, if any."""
        async with translated(action), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(UserRow))
            return await (await cursor.execute(named_query(name), params)).fetchone()
