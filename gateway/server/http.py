"""The MCP face over streamable HTTP: `/mcp` (the SDK's session manager), `/metrics` and `/graph`, behind API keys.

Every request needs ``Authorization: Bearer <api key>``: a missing, malformed, unknown or revoked key is
answered 401 with one message for all four (nothing that helps guessing), a key past its rate limit 429 with
`Retry-After`. An accepted key becomes the request's MCP principal (`AuthenticatedUser`): the SDK binds each
session to the key that opened it, and the meta-tools read the user from `principal.gateway_user()` to keep one user's
workflows from another.

With OAuth sign-in on (`OAuthFace`), the authorization server's routes are served beside `/mcp`, a bearer that is
not an API key is checked as one of its access tokens, and a 401 names the protected resource metadata in its
``WWW-Authenticate`` header, as the MCP authorization spec asks.

Bound to a loopback host, a request whose Host (or Origin) header names another is refused on every path before its
key is looked up, as the SDK refuses it on `/mcp` (421, or 403 for the Origin): a page that rebinds its own name to
127.0.0.1 reads no metrics and no graph.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from mcp.server.auth.middleware.auth_context import auth_context_var
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecurityMiddleware, TransportSecuritySettings
from mcp_types import INVALID_REQUEST
from starlette.requests import Request
from starlette.types import Message, Receive, Scope, Send

from gateway.errors import AuthenticationError, GatewayError
from gateway.server.oauth import OAuthFace
from gateway.services.auth import KEY_SCHEME, Principal

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
UNAUTHORIZED = "missing, malformed, unknown or revoked API key"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")


class Gatekeeper(Protocol):
    """Who a request is, and whether they may go on now."""

    async def authenticate(self, authorization: str | None) -> Principal: ...

    async def check(self, principal: Principal) -> float | None:
        """None to go on, else the seconds until the caller's rate-limit window ends."""
        ...

    async def session_opened(self, session_id: str, principal: Principal) -> None:
        """Keep a new MCP session, with its owner and expiry, in Postgres."""
        ...

    async def session_owner(self, session_id: str) -> str | None:
        """The user id of an unexpired session; None once it expired (or never was)."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpPages:
    """What the HTTP face serves beside `/mcp`."""

    metrics: Callable[[], str]
    graph: Callable[[str | None], Awaitable[str]] | None = None
    """The graph page as the user (the API key's) may see it: capability names of that user's and shared ones."""


def session_manager(server: Server[Any], *, host: str) -> StreamableHTTPSessionManager:
    """The SDK's streamable HTTP sessions for `server`; bound to a loopback host, other Host headers are
    refused (DNS rebinding)."""
    security = None
    if host in LOCAL_HOSTS:
        allowed = [f"{h}:*" for h in LOCAL_HOSTS] + list(LOCAL_HOSTS)
        origins = [f"http://{h}:*" for h in LOCAL_HOSTS]
        security = TransportSecuritySettings(allowed_hosts=allowed, allowed_origins=origins)
    return StreamableHTTPSessionManager(server, security_settings=security)


class GatewayHttpApp:
    """The ASGI application: routes, the API-key check and the rate limit in front of the SDK's `/mcp`."""

    def __init__(self, *, sessions: StreamableHTTPSessionManager, gate: Gatekeeper, pages: HttpPages,
                 oauth: OAuthFace | None = None) -> None:
        self._sessions = sessions
        self._security = TransportSecurityMiddleware(sessions.security_settings)
        self._gate = gate
        self._pages = pages
        self._oauth = oauth

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run the session manager (its task group) for as long as the app serves."""
        async with self._sessions.run():
            yield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path = scope["path"].rstrip("/") or "/"
        if self._oauth is not None and path in self._oauth.paths:
            if await self._host_allowed(scope, receive, send):
                await self._oauth(scope, receive, send)
            return
        if path not in (MCP_PATH, "/metrics", "/graph"):
            await _plain(send, 404, "not found: the MCP endpoint is /mcp")
            return
        if not await self._host_allowed(scope, receive, send):
            return
        principal = await self._admit(scope, send)
        if principal is None:
            return
        if path == "/metrics":
            await _plain(send, 200, self._pages.metrics(), "text/plain; version=0.0.4; charset=utf-8")
        elif path == "/graph":
            await self._graph(principal.user_id, send)
        else:
            await self._mcp(principal, scope, receive, send)

    async def _host_allowed(self, scope: Scope, receive: Receive, send: Send) -> bool:
        """Whether the Host and Origin headers name this gateway; else the SDK's refusal is sent (its check guards
        `/mcp` only, this one `/metrics` and `/graph` too, before any key is looked up)."""
        refusal = await self._security.validate_request(Request(scope), is_post=False)
        if refusal is None:
            return True
        await refusal(scope, receive, send)
        return False

    async def _admit(self, scope: Scope, send: Send) -> Principal | None:
        """The caller's principal; else the 401 or 429 answer is sent and None returned."""
        authorization = _header(scope, b"authorization")
        try:
            principal = await self._principal(scope, authorization)
            retry_after = await self._gate.check(principal)
        except AuthenticationError as exc:
            logger.info("refused an HTTP request: %s", getattr(exc, "reason", "unauthorized"))
            await _json(send, 401, {"error": "unauthorized", "message": UNAUTHORIZED},
                        [(b"www-authenticate", self._challenge(authorization).encode())])
            return None
        except GatewayError as exc:  # the database behind the keys or windows is down: say so, let nobody in
            await _json(send, 503, {"error": "unavailable", "message": str(exc)}, [(b"retry-after", b"5")])
            return None
        if retry_after is not None:
            seconds = str(max(1, round(retry_after)))
            await _json(send, 429, {"error": "rate_limited", "message": f"rate limit reached; retry in {seconds} s"},
                        [(b"retry-after", seconds.encode())])
            return None
        return principal

    async def _principal(self, scope: Scope, authorization: str | None) -> Principal:
        """An API key's principal, or with OAuth on, an access token's; else `AuthenticationError`."""
        scheme, _, token = (authorization or "").strip().partition(" ")
        token = token.strip()
        if self._oauth is None or scheme.lower() != "bearer" or not token or token.startswith(KEY_SCHEME):
            return await self._gate.authenticate(authorization)
        principal = await self._oauth.principal(scope)
        if principal is None:
            raise AuthenticationError("unknown, expired or revoked access token, or one for another resource")
        return principal

    def _challenge(self, authorization: str | None) -> str:
        """The ``WWW-Authenticate`` of a 401 (RFC 6750 section 3; with OAuth on, RFC 9728's resource_metadata)."""
        parts = ['realm="pml-gateway"']
        if self._oauth is not None:
            parts.append(f'resource_metadata="{self._oauth.resource_metadata_url}"')
        if authorization:
            parts.append('error="invalid_token"')
        return "Bearer " + ", ".join(parts)

    async def _mcp(self, principal: Principal, scope: Scope, receive: Receive, send: Send) -> None:
        session_id = _header(scope, MCP_SESSION_ID_HEADER.encode())
        try:
            owner = await self._gate.session_owner(session_id) if session_id is not None else None
        except GatewayError as exc:  # the database behind the sessions is down and this one is not known here
            await _json(send, 503, {"error": "unavailable", "message": str(exc)}, [(b"retry-after", b"5")])
            return
        if session_id is not None and owner != principal.user_id:
            await _json(send, 404, {"jsonrpc": "2.0", "id": None, "error": {
                "code": INVALID_REQUEST, "message": "Session not found (expired, or another key's)"}}, [])
            return
        user = AuthenticatedUser(AccessToken(token=principal.key_prefix, client_id=principal.user_id,
                                             scopes=[principal.role], subject=principal.username))
        token = auth_context_var.set(user)
        try:
            answer = send if session_id is not None else self._recording(principal, send)
            await self._sessions.handle_request({**scope, "user": user}, receive, answer)
        finally:
            auth_context_var.reset(token)

    def _recording(self, principal: Principal, send: Send) -> Send:
        """`send` for a request without a session: keeps the session its answer opens (the ``mcp-session-id``
        header) before passing the answer on."""
        header = MCP_SESSION_ID_HEADER.lower().encode()

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                opened = next((v for k, v in message.get("headers", ()) if k.lower() == header), None)
                if opened is not None:
                    await self._gate.session_opened(opened.decode("latin-1"), principal)
            await send(message)

        return recording

    async def _graph(self, user: str, send: Send) -> None:
        if self._pages.graph is None:
            await _plain(send, 404, "no graph view in this gateway")
            return
        await _plain(send, 200, await self._pages.graph(user), "text/html; charset=utf-8")


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return None


async def _plain(send: Send, status: int, text: str, content_type: str = "text/plain; charset=utf-8") -> None:
    await _respond(send, status, text.encode(), content_type, [])


async def _json(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]]) -> None:
    await _respond(send, status, json.dumps(body).encode(), "application/json", extra)


async def _respond(send: Send, status: int, body: bytes, content_type: str,
                   extra: list[tuple[bytes, bytes]]) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge the server's start and stop (the session manager runs in `GatewayHttpApp.running`)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
