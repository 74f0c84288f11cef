"""Users' secrets in Postgres (`user_secrets`): only sealed (`gateway.vault.Sealed`), never in clear.

The store moves sealed bytes; sealing and opening are the secret service's, which holds the master keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from psycopg.rows import class_row

from gateway.db.pool import Pool, translated
from gateway.db.queries import query as named_query
from gateway.models import Sealed


@dataclass(frozen=True, slots=True)
class SecretEntry:
    """A secret as listed: its name, the master key that wraps it and when it was last set (never its value)."""

    name: str
    key_id: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredSecret:
    """One sealed secret with its owner and name (a rotation's unit of work)."""

    user_id: str
    name: str
    key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes

    @property
    def sealed(self) -> Sealed:
        return Sealed(key_id=self.key_id, wrapped_key=self.wrapped_key, nonce=self.nonce, ciphertext=self.ciphertext)


@dataclass(frozen=True, slots=True)
class _Sealed:
    key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes


class SecretStore:
    """Sealed secrets by (user id, name)."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def put(self, user_id: str, name: str, sealed: Sealed) -> None:
        params = {"user_id": user_id, "name": name, "key_id": sealed.key_id, "wrapped_key": sealed.wrapped_key,
                  "nonce": sealed.nonce, "ciphertext": sealed.ciphertext}
        async with translated(f"storing the secret {name!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("put_secret"), params)

    async def get(self, user_id: str, name: str) -> Sealed | None:
        async with translated(f"reading the secret {name!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(_Sealed))
            row = await (await cursor.execute(named_query("get_secret"), {"user_id": user_id, "name": name})
                         ).fetchone()
        if row is None:
            return None
        return Sealed(key_id=row.key_id, wrapped_key=bytes(row.wrapped_key), nonce=bytes(row.nonce),
                      ciphertext=bytes(row.ciphertext))

    async def names(self, user_id: str) -> list[SecretEntry]:
        async with translated("listing secrets"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(SecretEntry))
            return await (await cursor.execute(named_query("secret_names"), {"user_id": user_id})).fetchall()

    async def delete(self, user_id: str, name: str) -> bool:
        async with translated(f"deleting the secret {name!r}"), self._pool.connection() as conn:
            cursor = await conn.execute(named_query("delete_secret"), {"user_id": user_id, "name": name})
            return cursor.rowcount > 0

    async def not_under(self, current_key_id: str, batch: int) -> list[StoredSecret]:
        """A batch of secrets wrapped by another master key than `current_key_id`."""
        async with translated("reading secrets to re-wrap"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(StoredSecret))
            rows = await (await cursor.execute(named_query("secrets_to_rewrap"),
                                               {"current": current_key_id, "batch": batch})).fetchall()
        return [StoredSecret(r.user_id, r.name, r.key_id, bytes(r.wrapped_key), bytes(r.nonce), bytes(r.ciphertext))
                for r in rows]

    async def rewrapped(self, old: StoredSecret, new: Sealed) -> bool:
        """Store `new`'s wrapped key for `old`'s secret, unless it changed meanwhile (then False)."""
        params = {"user_id": old.user_id, "name": old.name, "key_id": new.key_id, "wrapped_key": new.wrapped_key,
                  "old_key_id": old.key_id, "ciphertext": old.ciphertext}
        async with translated(f"re-wrapping the secret {old.name!r}"), self._pool.connection() as conn:
            cursor = await conn.execute(named_query("rewrap_secret"), params)
            return cursor.rowcount > 0

    async def by_key(self) -> dict[str, int]:
        """How many secrets each master key wraps."""
        async with translated("counting secrets by master key"), self._pool.connection() as conn:
            rows = await (await conn.execute(named_query("secrets_by_key"))).fetchall()
        return {str(key_id): int(count) for key_id, count in rows}
