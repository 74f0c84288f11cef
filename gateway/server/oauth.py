"""OAuth sign-in on the HTTP face: the SDK's authorization server routes, the protected resource metadata of
`/mcp` (RFC 9728), the upstream's callback, and the check of an OAuth bearer token on a request.

Routes (the SDK's, over `GatewayOAuthProvider`): ``/.well-known/oauth-authorization-server`` (RFC 8414),
``/.well-known/oauth-protected-resource/mcp``, ``/register`` (RFC 7591), ``/authorize``, ``/token`` and
``/revoke``, where client secrets are checked against their stored hash (`HashedSecretAuthenticator`); and
``/oauth/callback``, where the upstream identity provider sends the browser back. A bearer token is accepted on
`/mcp` when it is unrevoked, unexpired and was issued for this gateway's `/mcp` URL (the SDK's
`BearerAuthBackend` checks the last two).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from mcp.server.auth.handlers.revoke import RevocationHandler
from mcp.server.auth.handlers.token import TokenHandler
from mcp.server.auth.middleware.bearer_auth import BearerAuthBackend
from mcp.server.auth.routes import (
    REVOCATION_PATH,
    TOKEN_PATH,
    build_resource_metadata_url,
    cors_middleware,
    create_auth_routes,
    create_protected_resource_routes,
)
from mcp.server.auth.settings import ClientRegistrationOptions, RevocationOptions
from pydantic import AnyHttpUrl
from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route, Router
from starlette.types import Receive, Scope, Send

from gateway.errors import GatewayError, SignInError
from gateway.server.oauth_provider import SCOPE, GatewayAccessToken, GatewayOAuthProvider, HashedSecretAuthenticator
from gateway.services.auth import Principal

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/oauth/callback"
OAUTH_KEY_PREFIX = "oauth:"
"""An OAuth principal's `key_prefix` (what its rate-limit windows count under): this and its user id."""


class OAuthFace:
    """The OAuth routes, and the principal of a request that carries one of our access tokens."""

    def __init__(self, provider: GatewayOAuthProvider) -> None:
        places = provider.places
        self._router = Router(routes=_routes(provider))
        self.paths = frozenset(route.path for route in self._router.routes if isinstance(route, Route))
        self._bearer = BearerAuthBackend(provider,
                                         resource_server_url=AnyHttpUrl(places.resource))
        self.resource_metadata_url = str(build_resource_metadata_url(AnyHttpUrl(places.resource)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._router(scope, receive, send)

    async def principal(self, scope: Scope) -> Principal | None:
        """The user of the request's access token; None if it is not one of ours, or revoked, expired, or issued
        for another resource."""
        found = await self._bearer.authenticate(HTTPConnection(scope))
        if found is None:
            return None
        token = found[1].access_token
        assert isinstance(token, GatewayAccessToken)  # the provider's own tokens
        return Principal(user_id=token.subject or "", username=token.username, role=token.role,
                         key_prefix=OAUTH_KEY_PREFIX + (token.subject or ""))


def _routes(provider: GatewayOAuthProvider) -> list[Route]:
    """The SDK's routes, with the token and revocation endpoints checking hashed client secrets, and the callback."""
    issuer, resource = AnyHttpUrl(provider.places.issuer), AnyHttpUrl(provider.places.resource)
    routes = create_auth_routes(
        provider, issuer,
        client_registration_options=ClientRegistrationOptions(enabled=True, valid_scopes=[SCOPE],
                                                              default_scopes=[SCOPE]),
        revocation_options=RevocationOptions(enabled=True))
    clients = HashedSecretAuthenticator(provider)
    hashed = {
        TOKEN_PATH: TokenHandler(provider, clients).handle,
        REVOCATION_PATH: RevocationHandler(provider, clients).handle,
    }
    routes = [Route(r.path, cors_middleware(hashed[r.path], ["POST", "OPTIONS"]), methods=["POST", "OPTIONS"])
              if r.path in hashed else r for r in routes]
    routes += create_protected_resource_routes(resource, [issuer], scopes_supported=[SCOPE],
                                               resource_name="PML Gateway")
    return [*routes, Route(CALLBACK_PATH, _callback(provider), methods=["GET"])]


def _callback(provider: GatewayOAuthProvider) -> Callable[[Request], Awaitable[Response]]:
    """The endpoint the upstream sends the browser back to: on to the client's redirect URI with our code (or the
    error), or a 400 when the state is unknown, used or expired (there is no client to send it to)."""

    async def callback(request: Request) -> Response:
        state = request.query_params.get("state")
        if not state:
            return _error(400, "invalid_request", "the identity provider's answer carries no state")
        try:
            query = request.query_params
            done = await provider.finish(state=state, code=query.get("code"), error=query.get("error"),
                                         iss=query.get("iss"))
        except SignInError as exc:
            logger.info("refused an OAuth callback: %s", exc)
            return _error(400, exc.error, str(exc))
        except GatewayError as exc:
            return _error(503, "temporarily_unavailable", str(exc))
        return RedirectResponse(done.redirect, status_code=302, headers={"Cache-Control": "no-store"})

    return callback


def _error(status: int, error: str, description: str) -> Response:
    return JSONResponse({"error": error, "error_description": description}, status_code=status,
                        headers={"Cache-Control": "no-store"})
