"""The gateway's OAuth 2.1 authorization server, as the MCP SDK's `OAuthAuthorizationServerProvider` over Postgres.

The SDK's handlers speak the protocol (metadata, registration, PKCE S256, the token and revocation endpoints);
this provider keeps their state in `OAuthStore`, hashed: a client's secret, codes and tokens are looked up by
their SHA-256. `/authorize` sends the user to the upstream identity provider; its callback (`finish`) maps who
signed in to a user and hands the client our code. Rotation: a refresh token is revoked as it is used, and a
used code or a revoked refresh token presented again revokes its whole grant. Tokens are bound to the resource
they were asked for, which must be the gateway's ``/mcp`` URL (else ``invalid_target``).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from mcp.server.auth.middleware.client_auth import ClientAuthenticator
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl
from starlette.requests import Request

from gateway.db.oauth import OAuthStore
from gateway.errors import SignInError
from gateway.services import oauth
from gateway.services.upstream import Upstream

SCOPE = "mcp"
"""The one scope: use the gateway's MCP endpoint as the signed-in user."""


class GatewayCode(AuthorizationCode):
    grant_id: str


class GatewayRefreshToken(RefreshToken):
    grant_id: str


class GatewayAccessToken(AccessToken):
    grant_id: str
    username: str
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class OAuthPlaces:
    """Where the gateway is, seen from outside: its issuer URL, the `/mcp` resource and the upstream callback."""

    issuer: str
    resource: str
    callback: str


@dataclass(frozen=True, slots=True, kw_only=True)
class SignedIn:
    """Where to send the browser once the upstream called back."""

    redirect: str


class GatewayOAuthProvider:
    """`OAuthAuthorizationServerProvider` over `OAuthStore`, sign-in delegated to `upstream`."""

    def __init__(self, *, store: Callable[[], Awaitable[OAuthStore]], upstream: Upstream, places: OAuthPlaces,
                 open_signup: bool) -> None:
        self._store = store
        self._upstream = upstream
        self.places = places
        self._open_signup = open_signup

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        """The client as registered; its `client_secret` is the stored hash (see `HashedSecretAuthenticator`)."""
        row = await (await self._store()).client(client_id)
        if row is None:
            return None
        return OAuthClientInformationFull.model_validate({**row.metadata, "client_secret": row.secret_hash})

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        if any(_foreign_redirect(str(uri)) for uri in client_info.redirect_uris or ()):
            raise RegistrationError("invalid_redirect_uri", "a redirect URI must be https, or http on a loopback host")
        secret = client_info.client_secret
        metadata = client_info.model_dump(mode="json", exclude={"client_secret"}, exclude_none=True)
        await (await self._store()).add_client(client_info.client_id or "", metadata=metadata,
                                               secret_hash=None if secret is None else oauth.secret_hash(secret))

    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        """Keep the request as pending (15 minutes) and send the user to the upstream to sign in."""
        self._check_resource(params.resource, AuthorizeError("invalid_target", "tokens are only for "
                                                             f"{self.places.resource}"))
        scopes = params.scopes or (client.scope.split() if client.scope else [SCOPE])
        state = oauth.new_secret()
        request = {"redirect_uri": str(params.redirect_uri), "explicit": params.redirect_uri_provided_explicitly,
                   "code_challenge": params.code_challenge, "scopes": scopes, "state": params.state,
                   "resource": params.resource or self.places.resource}
        await (await self._store()).add_pending(oauth.secret_hash(state), client_id=client.client_id or "",
                                                request=request, ttl_s=oauth.PENDING_TTL_S)
        return await self._upstream.authorization_url(
            redirect_uri=self.places.callback, state=state, nonce=oauth.upstream_nonce(state),
            code_challenge=oauth.s256(oauth.upstream_verifier(state)))

    async def finish(self, *, state: str, code: str | None, error: str | None, iss: str | None = None) -> SignedIn:
        """The upstream's callback: the client's redirect with our new code, or with the error.

        An unknown, used or expired `state` is a `SignInError` with ``invalid_request``: there is no client to
        send it to."""
        store = await self._store()
        pending = await store.take_pending(oauth.secret_hash(state))
        if pending is None or not pending.live:
            raise SignInError("unknown or expired sign-in (state)", error="invalid_request")
        request = pending.request
        try:
            if error is not None or code is None:
                raise SignInError(f"the identity provider answered {error or 'no code'}")
            if iss is not None and iss.rstrip("/") != self._upstream.issuer.rstrip("/"):
                raise SignInError(f"the answer names another issuer, {iss!r} (RFC 9207)")
            identity = await self._upstream.identity(code=code, redirect_uri=self.places.callback,
                                                     code_verifier=oauth.upstream_verifier(state),
                                                     nonce=oauth.upstream_nonce(state))
            user_id = await oauth.signed_in_user(store, identity, open_signup=self._open_signup)
        except SignInError as exc:
            return SignedIn(redirect=construct_redirect_uri(request["redirect_uri"], error=exc.error,
                                                            error_description=str(exc), state=request["state"]))
        ours = oauth.new_secret()
        await store.add_code(oauth.secret_hash(ours), ttl_s=oauth.CODE_TTL_S, client_id=pending.client_id,
                             user_id=user_id, redirect_uri=request["redirect_uri"],
                             redirect_uri_explicit=request["explicit"], code_challenge=request["code_challenge"],
                             scopes=request["scopes"], resource=request["resource"])
        return SignedIn(redirect=construct_redirect_uri(request["redirect_uri"], code=ours, state=request["state"]))

    async def load_authorization_code(self, client: OAuthClientInformationFull,
                                      authorization_code: str) -> GatewayCode | None:
        """The code, if it is this client's and unused; a used one presented again revokes its grant's tokens."""
        store = await self._store()
        row = await store.code(oauth.secret_hash(authorization_code))
        if row is None or row.client_id != client.client_id:
            return None
        if row.used:
            await store.revoke_grant(row.grant_id)
            return None
        return GatewayCode(code=authorization_code, scopes=row.scopes, expires_at=row.expires_at,
                           client_id=row.client_id, code_challenge=row.code_challenge,
                           redirect_uri=AnyUrl(row.redirect_uri),
                           redirect_uri_provided_explicitly=row.redirect_uri_explicit, resource=row.resource,
                           subject=row.user_id, grant_id=row.grant_id)

    async def exchange_authorization_code(self, client: OAuthClientInformationFull,
                                          authorization_code: GatewayCode) -> OAuthToken:
        store = await self._store()
        if not await store.use_code(oauth.secret_hash(authorization_code.code)):
            raise TokenError("invalid_grant", "authorization code already used")
        return await self._issue(store, authorization_code.grant_id, client_id=authorization_code.client_id,
                                 user_id=authorization_code.subject or "", scopes=authorization_code.scopes,
                                 resource=authorization_code.resource)

    async def load_refresh_token(self, client: OAuthClientInformationFull,
                                 refresh_token: str) -> GatewayRefreshToken | None:
        """The refresh token, if it is this client's and unrevoked; a revoked one presented again (stolen, or
        replayed) revokes its whole grant."""
        store = await self._store()
        row = await store.token(oauth.secret_hash(refresh_token))
        if row is None or row.kind != "refresh" or row.client_id != client.client_id:
            return None
        if row.revoked:
            await store.revoke_grant(row.grant_id)
            return None
        return GatewayRefreshToken(token=refresh_token, client_id=row.client_id, scopes=row.scopes,
                                   expires_at=row.expires_at, resource=row.resource, subject=row.user_id,
                                   grant_id=row.grant_id)

    async def exchange_refresh_token(self, client: OAuthClientInformationFull, refresh_token: GatewayRefreshToken,
                                     scopes: list[str]) -> OAuthToken:
        store = await self._store()
        if not await store.use_refresh_token(oauth.secret_hash(refresh_token.token)):
            await store.revoke_grant(refresh_token.grant_id)
            raise TokenError("invalid_grant", "refresh token already used")
        return await self._issue(store, refresh_token.grant_id, client_id=refresh_token.client_id,
                                 user_id=refresh_token.subject or "", scopes=scopes, resource=refresh_token.resource)

    async def load_access_token(self, token: str) -> GatewayAccessToken | None:
        """The access token, unrevoked and of an unrevoked user (its expiry and resource are the caller's to check)."""
        row = await (await self._store()).token(oauth.secret_hash(token))
        if row is None or row.kind != "access" or row.revoked:
            return None
        return GatewayAccessToken(token=token, client_id=row.client_id, scopes=row.scopes, expires_at=row.expires_at,
                                  resource=row.resource, subject=row.user_id, grant_id=row.grant_id,
                                  username=row.username, role=row.role)

    async def verify_token(self, token: str) -> GatewayAccessToken | None:
        """The SDK's `TokenVerifier`: the bearer check on `/mcp` reads our own access tokens."""
        return await self.load_access_token(token)

    async def revoke_token(self, token: GatewayAccessToken | GatewayRefreshToken) -> None:
        """Revoke the token's whole grant: the access and refresh tokens issued together end together."""
        await (await self._store()).revoke_grant(token.grant_id)

    async def exchange_identity_assertion(self, client: OAuthClientInformationFull, params: Any) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "the gateway signs users in through its identity provider only")

    async def _issue(self, store: OAuthStore, grant_id: str, *, client_id: str, user_id: str, scopes: list[str],
                     resource: str | None) -> OAuthToken:
        access, refresh = oauth.new_secret(), oauth.new_secret()
        fields: dict[str, Any] = {"grant_id": grant_id, "client_id": client_id, "user_id": user_id,
                                  "scopes": scopes, "resource": resource}
        await store.add_token(oauth.secret_hash(access), kind="access", ttl_s=oauth.ACCESS_TTL_S, **fields)
        await store.add_token(oauth.secret_hash(refresh), kind="refresh", ttl_s=oauth.REFRESH_TTL_S, **fields)
        return OAuthToken(access_token=access, token_type="Bearer", expires_in=oauth.ACCESS_TTL_S,
                          refresh_token=refresh, scope=" ".join(scopes) or None)

    def _check_resource(self, resource: str | None, refusal: Exception) -> None:
        if resource is not None and resource.rstrip("/") != self.places.resource:
            raise refusal


class HashedSecretAuthenticator(ClientAuthenticator):
    """The SDK's client authentication, against a stored SHA-256 instead of the secret itself: the client the
    SDK compares with carries the presented secret when its hash matches, else a fresh random one."""

    async def authenticate_request(self, request: Request) -> OAuthClientInformationFull:
        presented = await _presented_secret(request)
        return await ClientAuthenticator(_Presenting(self.provider, presented)).authenticate_request(request)


class _Presenting:
    """The provider, but `get_client` gives the client with the presented secret in place of its hash, if right."""

    def __init__(self, provider: Any, presented: str | None) -> None:
        self._provider = provider
        self._presented = presented

    def __getattr__(self, name: str) -> Any:
        return getattr(self._provider, name)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        client: OAuthClientInformationFull | None = await self._provider.get_client(client_id)
        if client is None or client.client_secret is None:
            return client
        right = self._presented is not None and hmac.compare_digest(
            oauth.secret_hash(self._presented).encode(), client.client_secret.encode())
        return client.model_copy(update={"client_secret": self._presented if right else oauth.new_secret()})


async def _presented_secret(request: Request) -> str | None:
    """The client secret of a token or revocation request: from its Basic header, else its form."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            return unquote(base64.b64decode(header[6:]).decode().partition(":")[2])
        except (ValueError, UnicodeDecodeError, binascii.Error):
            return None
    secret = (await request.form()).get("client_secret")
    return secret if isinstance(secret, str) else None


def _foreign_redirect(uri: str) -> bool:
    """Whether `uri` is plain http to another host than a loopback one (OAuth 2.1 section 8.4.2; https and a
    native app's own scheme are fine)."""
    scheme, _, rest = uri.partition("://")
    host = rest.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return scheme == "http" and host not in ("localhost", "127.0.0.1", "::1")
