"""Who opened each HTTP session: kept in Postgres with its expiry, and in memory for when Postgres cannot say.

The SDK keeps the sessions themselves in this process; the database says whose each one is and until when, so
that an expired session or another key's is refused. While the database is unreachable, the sessions this
gateway opened go on (their owner is remembered here), and one opened meanwhile is kept in memory only.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Protocol

from gateway.errors import DatabaseUnavailableError
from gateway.lru import LRU
from gateway.services.auth import Principal

logger = logging.getLogger(__name__)

SESSIONS_KEPT = 10_000
"""Session owners remembered in memory, the least recently used forgotten first."""


class SessionStore(Protocol):
    async def open_session(self, session_id: str, user_id: str) -> datetime: ...

    async def session_owner(self, session_id: str) -> str | None: ...


class SessionOwners:
    """Record and look up the owner of an HTTP session."""

    def __init__(self, store: SessionStore, *, kept: int = SESSIONS_KEPT) -> None:
        self._store = store
        self._owners: LRU[str, tuple[str, bool]] = LRU(kept)
        """Session id -> (user id, whether Postgres has it)."""

    async def opened(self, session_id: str, principal: Principal) -> None:
        """Record who opened a session; while the database is unreachable, in memory only."""
        try:
            await self._store.open_session(session_id, principal.user_id)
        except DatabaseUnavailableError as exc:
            logger.warning("session %s... of %s kept in memory only: %s", session_id[:8], principal.username, exc)
            self._owners[session_id] = (principal.user_id, False)
        else:
            self._owners[session_id] = (principal.user_id, True)

    async def owner(self, session_id: str) -> str | None:
        """Who may use this session: as stored (expired or revoked: None); as opened here when the database could
        not store it, or cannot answer now."""
        kept = self._owners.get(session_id)
        try:
            owner = await self._store.session_owner(session_id)
        except DatabaseUnavailableError:
            if kept is None:
                raise
            return kept[0]
        if owner is None and kept is not None and not kept[1]:
            return kept[0]
        return owner
