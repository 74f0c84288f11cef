"""The upstream identity providers, against mock transports: GitHub's identity is its numeric id, an OpenID
Connect ID token is checked (issuer, audience, expiry, nonce), and network failures become `SignInError`."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from gateway.errors import SignInError
from gateway.services.upstream import UpstreamSettings, upstream

pytestmark = pytest.mark.anyio

ISSUER = "https://id.example"
GITHUB = UpstreamSettings(issuer="github", client_id="gh-client", client_secret="gh-secret")
OIDC = UpstreamSettings(issuer=ISSUER, client_id="gw", client_secret="oidc-secret")


def jwt(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256'})}.{part(claims)}.signature"


def transport(answers: dict[str, Callable[[httpx2.Request], Any]]) -> httpx2.MockTransport:
    """A transport that answers each URL path with the JSON its function returns for the request."""
    def handle(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=answers[request.url.path](request))

    return httpx2.MockTransport(handle)


def oidc(claims: dict[str, Any], seen: list[httpx2.Request] | None = None) -> httpx2.MockTransport:
    def token(request: httpx2.Request) -> dict[str, Any]:
        (seen if seen is not None else []).append(request)
        return {"id_token": jwt(claims), "access_token": "upstream-access"}

    return transport({
        "/.well-known/openid-configuration": lambda r: {
            "issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth", "token_endpoint": f"{ISSUER}/token"},
        "/token": token,
    })


def claims(**changed: Any) -> dict[str, Any]:
    return {"iss": ISSUER, "aud": "gw", "exp": time.time() + 60, "nonce": "n", "sub": "s1",
            "preferred_username": "ada", **changed}


async def test_github_signs_in_by_numeric_id_with_pkce_and_its_secret() -> None:
    seen: list[httpx2.Request] = []

    def token(request: httpx2.Request) -> dict[str, Any]:
        seen.append(request)
        return {"access_token": "gh-token"}

    github = upstream(GITHUB, transport=transport({
        "/login/oauth/access_token": token,
        "/user": lambda r: {"id": 4242, "login": "ada", "email": None}}))
    url = await github.authorization_url(redirect_uri="https://gw/cb", state="st", code_challenge="ch", nonce="n")
    identity = await github.identity(code="c", redirect_uri="https://gw/cb", code_verifier="v", nonce="n")
    query = parse_qs(urlsplit(url).query)
    sent = parse_qs(seen[0].content.decode())
    assert query["code_challenge_method"] == ["S256"] and query["state"] == ["st"]
    assert sent["client_secret"] == ["gh-secret"] and sent["code_verifier"] == ["v"]
    assert (identity.kind, identity.subject, identity.username) == ("github", "4242", "ada")


async def test_github_refusing_the_code_is_a_sign_in_error() -> None:
    github = upstream(GITHUB, transport=transport({"/login/oauth/access_token": lambda r: {
        "error": "bad_verification_code"}}))
    with pytest.raises(SignInError, match="bad_verification_code"):
        await github.identity(code="c", redirect_uri="https://gw/cb", code_verifier="v", nonce="n")


async def test_an_oidc_id_token_of_this_sign_in_names_the_user() -> None:
    seen: list[httpx2.Request] = []
    identity = await upstream(OIDC, transport=oidc(claims(), seen)).identity(
        code="c", redirect_uri="https://gw/cb", code_verifier="v", nonce="n")
    assert (identity.kind, identity.issuer, identity.subject, identity.username) == ("oidc", ISSUER, "s1", "ada")
    assert seen[0].headers["authorization"].startswith("Basic ")


@pytest.mark.parametrize("changed", [
    {"iss": "https://evil.example"}, {"aud": "another-client"}, {"exp": time.time() - 3600}, {"nonce": "other"},
    {"sub": ""},
])
async def test_an_oidc_id_token_not_of_this_sign_in_is_refused(changed: dict[str, Any]) -> None:
    with pytest.raises(SignInError):
        await upstream(OIDC, transport=oidc(claims(**changed))).identity(
            code="c", redirect_uri="https://gw/cb", code_verifier="v", nonce="n")


async def test_an_unreachable_provider_is_temporarily_unavailable() -> None:
    def refuse(request: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("refused", request=request)

    with pytest.raises(SignInError) as caught:
        await upstream(OIDC, transport=httpx2.MockTransport(refuse)).authorization_url(
            redirect_uri="https://gw/cb", state="s", code_challenge="c", nonce="n")
    assert caught.value.error == "temporarily_unavailable"
