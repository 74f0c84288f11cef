"""The upstream identity provider that signs users in for the gateway's OAuth server: GitHub, or any OpenID
Connect issuer found by discovery (``/.well-known/openid-configuration``).

Either side is the same two steps: `authorization_url` sends the user's browser upstream (with our own PKCE
S256 challenge and state), `identity` turns the code the upstream hands back into who signed in. For OpenID
Connect the ID token comes straight from the token endpoint over the back channel, so its issuer, audience,
expiry and nonce are checked and its signature is not (OpenID Connect Core 3.1.3.7, item 6). httpx2's errors
are translated here, once, into `SignInError`.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import urlencode

import anyio
import httpx2

from gateway.errors import SignInError

GITHUB = "github"
GITHUB_AUTHORIZE = "https://github.com/login/oauth/authorize"
GITHUB_TOKEN = "https://github.com/login/oauth/access_token"
GITHUB_USER = "https://api.github.com/user"
UPSTREAM_TIMEOUT_S = 15.0
"""Each request to the upstream (discovery, token, user info)."""
CLOCK_SKEW_S = 120
"""How far an ID token's expiry may be behind our clock."""


@dataclass(frozen=True, slots=True, kw_only=True)
class UpstreamSettings:
    """Where users sign in: ``github`` or an OpenID Connect issuer URL, and the gateway's client there."""

    issuer: str = GITHUB
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Who the upstream says signed in: `kind` ``github`` (subject: the numeric user id) or ``oidc``."""

    kind: str
    issuer: str
    subject: str
    username: str
    email: str | None = None


class Upstream(Protocol):
    @property
    def issuer(self) -> str: ...

    async def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str, nonce: str) -> str: ...

    async def identity(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity: ...


Transport = httpx2.AsyncBaseTransport
"""How requests reach the upstream (tests pass a mock one; None: the network)."""


def upstream(settings: UpstreamSettings, *, transport: Transport | None = None) -> Upstream:
    """The GitHub or OpenID Connect upstream that `settings` name."""
    if settings.issuer == GITHUB:
        return GitHubUpstream(settings, transport=transport)
    return OidcUpstream(settings, transport=transport)


class GitHubUpstream:
    """GitHub's OAuth app endpoints; the identity is the ``/user`` of the token GitHub gives back."""

    def __init__(self, settings: UpstreamSettings, *, transport: Transport | None = None) -> None:
        self._settings = settings
        self._transport = transport

    @property
    def issuer(self) -> str:
        return GITHUB

    async def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str, nonce: str) -> str:
        return _with_query(GITHUB_AUTHORIZE, client_id=self._settings.client_id, redirect_uri=redirect_uri,
                           state=state, scope="read:user user:email", code_challenge=code_challenge,
                           code_challenge_method="S256", allow_signup="false")

    async def identity(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        form = {"client_id": self._settings.client_id, "client_secret": self._settings.client_secret,
                "code": code, "redirect_uri": redirect_uri, "code_verifier": code_verifier}
        async with _client(self._transport) as http:
            tokens = await _json(http.post(GITHUB_TOKEN, data=form, headers={"Accept": "application/json"}))
            if "access_token" not in tokens:
                raise SignInError(f"GitHub refused the code: {tokens.get('error', 'no access token')}")
            user = await _json(http.get(GITHUB_USER, headers={"Authorization": f"Bearer {tokens['access_token']}",
                                                              "Accept": "application/vnd.github+json"}))
        if "id" not in user or "login" not in user:
            raise SignInError("GitHub's /user answer has no id or login", error="server_error")
        return Identity(kind=GITHUB, issuer=GITHUB, subject=str(user["id"]), username=str(user["login"]),
                        email=user.get("email"))


class OidcUpstream:
    """An OpenID Connect issuer, its endpoints read once from its discovery document."""

    def __init__(self, settings: UpstreamSettings, *, transport: Transport | None = None) -> None:
        self._settings = settings
        self._transport = transport
        self._discovered: dict[str, Any] | None = None
        self._lock = anyio.Lock()

    @property
    def issuer(self) -> str:
        return self._settings.issuer

    async def authorization_url(self, *, redirect_uri: str, state: str, code_challenge: str, nonce: str) -> str:
        endpoint = (await self._configuration())["authorization_endpoint"]
        return _with_query(endpoint, client_id=self._settings.client_id, redirect_uri=redirect_uri,
                           response_type="code", scope="openid email profile", state=state, nonce=nonce,
                           code_challenge=code_challenge, code_challenge_method="S256")

    async def identity(self, *, code: str, redirect_uri: str, code_verifier: str, nonce: str) -> Identity:
        configuration = await self._configuration()
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": code_verifier}
        auth = httpx2.BasicAuth(self._settings.client_id, self._settings.client_secret)
        async with _client(self._transport) as http:
            tokens = await _json(http.post(configuration["token_endpoint"], data=form, auth=auth))
            if "id_token" not in tokens:
                raise SignInError(f"the identity provider refused the code: {tokens.get('error', 'no ID token')}")
            claims = self._checked(_claims(tokens["id_token"]), nonce)
            if "userinfo_endpoint" in configuration and "access_token" in tokens:
                info = await _json(http.get(configuration["userinfo_endpoint"],
                                            headers={"Authorization": f"Bearer {tokens['access_token']}"}))
                if info.get("sub") == claims["sub"]:
                    claims = {**info, **claims}
        name = claims.get("preferred_username") or claims.get("nickname") or claims.get("email") or claims["sub"]
        return Identity(kind="oidc", issuer=self.issuer, subject=str(claims["sub"]), username=str(name),
                        email=claims.get("email"))

    def _checked(self, claims: dict[str, Any], nonce: str) -> dict[str, Any]:
        """The ID token's claims if they are for us, from our issuer, unexpired and of this sign-in."""
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if str(claims.get("iss")).rstrip("/") != self.issuer.rstrip("/") or self._settings.client_id not in audiences:
            raise SignInError("the ID token is not from the configured issuer or not for this gateway")
        if not isinstance(claims.get("exp"), int | float) or claims["exp"] < time.time() - CLOCK_SKEW_S:
            raise SignInError("the ID token has expired")
        if claims.get("nonce") != nonce or not claims.get("sub"):
            raise SignInError("the ID token is not of this sign-in (nonce) or names no subject")
        return claims

    async def _configuration(self) -> dict[str, Any]:
        async with self._lock:
            if self._discovered is None:
                url = self.issuer.rstrip("/") + "/.well-known/openid-configuration"
                async with _client(self._transport) as http:
                    found = await _json(http.get(url))
                named = str(found.get("issuer")).rstrip("/")
                if named != self.issuer.rstrip("/") or "authorization_endpoint" not in found:
                    raise SignInError(f"{url} does not describe the issuer {self.issuer}", error="server_error")
                self._discovered = found
            return self._discovered


def _client(transport: Transport | None) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=UPSTREAM_TIMEOUT_S, follow_redirects=False, transport=transport)


async def _json(pending: Any) -> dict[str, Any]:
    """The JSON object an upstream request answers; its failures as a `SignInError` (``temporarily_unavailable``)."""
    try:
        response: httpx2.Response = await pending
        body = response.json()
    except (httpx2.HTTPError, ValueError) as exc:
        raise SignInError(f"the identity provider cannot be reached: {exc}", error="temporarily_unavailable") from exc
    if not isinstance(body, dict):
        raise SignInError("the identity provider answered something else than a JSON object", error="server_error")
    return body


def _claims(id_token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (see the module's docstring)."""
    try:
        payload = id_token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as exc:
        raise SignInError("the ID token is not a JWT", error="server_error") from exc
    if not isinstance(claims, dict):
        raise SignInError("the ID token's payload is not an object", error="server_error")
    return claims


def _with_query(url: str, **params: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urlencode(params)}"
