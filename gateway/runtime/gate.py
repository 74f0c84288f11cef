"""Who an HTTP request is, and whether it may go on: the HTTP face's `Gatekeeper`, over the open services."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.db.oauth import OAuthStore
from gateway.runtime.services import Services
from gateway.services.auth import Principal


class HttpGate:
    """API keys, rate limits and session owners, from the services once the index is open."""

    def __init__(self, services: Callable[[], Awaitable[Services]]) -> None:
        self._services = services

    async def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an HTTP request's API key (`AuthenticationError` if there is none that holds)."""
        return await (await self._services()).auth.authenticate(authorization)

    async def check(self, principal: Principal) -> float | None:
        """None when the key may go on, else the seconds left in its rate-limit window."""
        return await (await self._services()).limits.check(principal)

    async def session_opened(self, session_id: str, principal: Principal) -> None:
        await (await self._services()).sessions.opened(session_id, principal)

    async def session_owner(self, session_id: str) -> str | None:
        return await (await self._services()).sessions.owner(session_id)

    async def oauth_store(self) -> OAuthStore:
        """The OAuth server's clients, codes and tokens (once the database is open)."""
        return (await self._services()).db.oauth
