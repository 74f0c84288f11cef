"""OAuth 2.1 sign-in on the HTTP gateway, against a real OpenID provider (oidc-provider, run by node) as its
upstream, driven by the SDK's OAuth client as a remote client would; then every broken step, each refused with the
error the specs name."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import select
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx2
import pytest
from mcp import Client
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken
from pydantic import AnyUrl

from tests.e2e import npm
from tests.e2e.support import ROOT, gateway_command, gateway_env
from tests.e2e.test_gateway import indexed, run_cli  # noqa: F401 - the fixture
from tests.e2e.test_http import base_url, new_key, post, sql

pytestmark = pytest.mark.anyio

PROVIDER_READY_S = 30.0
STOP_S = 10.0
CLIENT_SECRET = "upstream-secret-for-tests-only"
REDIRECT = "http://127.0.0.1:9/callback"
"""The MCP client's redirect URI: never listened on, the browser stops at it and reads the code."""
ELSEWHERE = "http://elsewhere.example/mcp"
_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


@dataclass
class Upstream:
    issuer: str


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    """oidc-provider on a free loopback port, the gateway registered there as client ``gateway``."""
    module = npm.prefix() / "node_modules" / "oidc-provider"
    if npm.missing() or not module.exists():
        npm.binary("oidc-provider-missing")  # skips (fails under CI) with the reason
    process = subprocess.Popen(["node", str(ROOT / "tests" / "e2e" / "oidc_provider.mjs"), str(module), "gateway",
                                CLIENT_SECRET], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
    assert process.stdout is not None and process.stdin is not None
    try:
        ready, _, _ = select.select([process.stdout], [], [], PROVIDER_READY_S)
        line = process.stdout.readline().decode() if ready else ""
        assert line.startswith("issuer "), f"oidc-provider did not start: {line!r}"
        yield Upstream(issuer=line.split()[1])
    finally:
        process.stdin.close()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


@contextmanager
def oauth_gateway(config: Path, database_url: str, log: Path, issuer: str,
                  *flags: str) -> Iterator[subprocess.Popen[bytes]]:
    """`serve --http 127.0.0.1:0` with OAuth sign-in through `issuer`, stopped with SIGTERM."""
    command = gateway_command("serve", "--config", str(config), "--database-url", database_url, "--http",
                              "127.0.0.1:0", "--oauth-issuer", issuer, "--oauth-client-id", "gateway", *flags)
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=gateway_env(PML_OAUTH_CLIENT_SECRET=CLIENT_SECRET), cwd=ROOT,
                                   stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=sink)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Browser:
    """The user's browser: follows redirects, signs in as `login` on the provider's pages and consents, and
    stops at the MCP client's redirect URI. `tamper` may change a URL on the way (the callback's state, say)."""

    login: str
    stops: list[str] = field(default_factory=list)
    tamper: Any = None

    async def visit(self, url: str) -> None:
        async with httpx2.AsyncClient(timeout=30, follow_redirects=False) as http:
            for _ in range(20):
                if url.startswith(REDIRECT):
                    self.stops.append(url)
                    return
                if self.tamper is not None:
                    url = self.tamper(url)
                answer = await http.get(url)
                if answer.is_redirect:
                    url = urljoin(url, answer.headers["location"])
                    continue
                action = _ACTION.search(answer.text)
                if answer.status_code != 200 or action is None:
                    self.stops.append(f"{answer.status_code} {url} {answer.text[:300]}")
                    return
                form = ({"prompt": "login", "login": self.login, "password": "x"} if 'name="login"' in answer.text
                        else {"prompt": "consent"})
                done = await http.post(urljoin(url, action.group(1)), data=form)
                assert done.is_redirect, done.text[:500]
                url = urljoin(url, done.headers["location"])
        raise AssertionError(f"no end to the redirects at {url}")

    def answer(self) -> dict[str, str]:
        """The query of the last stop at the client's redirect URI (code and state, or error)."""
        stop = self.stops[-1]
        assert stop.startswith(REDIRECT), stop
        return {k: v[0] for k, v in parse_qs(urlsplit(stop).query).items()}

    async def callback(self) -> AuthorizationCodeResult:
        found = self.answer()
        return AuthorizationCodeResult(code=found["code"], state=found.get("state"), iss=found.get("iss"))


class Memory(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


@asynccontextmanager
async def oauth_client(base: str, browser: Browser, storage: Memory) -> AsyncIterator[Client]:
    """The SDK's client with the SDK's OAuth: discovery, registration, PKCE, the browser, the token."""
    metadata = OAuthClientMetadata(redirect_uris=[AnyUrl(REDIRECT)], client_name="oauth tests",
                                   grant_types=["authorization_code", "refresh_token"], response_types=["code"],
                                   token_endpoint_auth_method="client_secret_post")
    auth = OAuthClientProvider(f"{base}/mcp", metadata, storage, redirect_handler=browser.visit,
                               callback_handler=browser.callback)
    http = create_mcp_http_client(auth=auth)
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), read_timeout_seconds=60) as c:
        yield c


async def form(base: str, path: str, data: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30) as http:
        return await http.post(f"{base}{path}", data=data)


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    return verifier, challenge


async def register(base: str) -> dict[str, Any]:
    body = {"redirect_uris": [REDIRECT], "client_name": "by hand", "grant_types": ["authorization_code",
            "refresh_token"], "response_types": ["code"], "token_endpoint_auth_method": "client_secret_post"}
    async with httpx2.AsyncClient(timeout=30) as http:
        answer = await http.post(f"{base}/register", json=body)
    assert answer.status_code == 201, answer.text
    client: dict[str, Any] = answer.json()
    return client


async def signed_in(base: str, client: dict[str, Any], browser: Browser, challenge: str,
                    **extra: str) -> dict[str, str]:
    """Through /authorize, the upstream's pages and its callback: what the client's redirect URI gets."""
    query = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
             "code_challenge": challenge, "code_challenge_method": "S256", "state": "client-state",
             "resource": f"{base}/mcp", **extra}
    await browser.visit(f"{base}/authorize?{urlencode(query)}")
    return browser.answer()


async def exchange(base: str, client: dict[str, Any], code: str, verifier: str) -> httpx2.Response:
    return await form(base, "/token", {"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT,
                                       "code_verifier": verifier, "client_id": client["client_id"],
                                       "client_secret": client["client_secret"]})


async def refresh(base: str, client: dict[str, Any], token: str) -> httpx2.Response:
    return await form(base, "/token", {"grant_type": "refresh_token", "refresh_token": token,
                                       "client_id": client["client_id"], "client_secret": client["client_secret"]})


async def test_a_remote_client_signs_in_through_the_upstream_calls_tools_refreshes_and_revokes(
    indexed: Path, database_url: str, tmp_path: Path, upstream: Upstream  # noqa: F811
) -> None:
    key = new_key(database_url, "scripted")
    log = tmp_path / "gateway.log"
    browser, storage = Browser(login="alice"), Memory()
    with oauth_gateway(indexed, database_url, log, upstream.issuer, "--oauth-open-signup"):
        base = await base_url(log)
        anonymous = await post(base, "/mcp", None)
        async with oauth_client(base, browser, storage) as client:
            found = (await client.call_tool("search_tools", {"query": "echo a text back"})).structured_content
        assert storage.tokens is not None and storage.client is not None
        first, registered = storage.tokens, storage.client.model_dump(mode="json")
        storage.tokens = first.model_copy(update={"access_token": ""})  # back later, with its refresh token only
        returning = Browser(login="nobody")
        async with oauth_client(base, returning, storage) as client:  # the SDK refreshes, no browser
            refreshed = await client.call_tool("search_tools", {"query": "echo a text back"})
        assert storage.tokens is not None
        rotated = storage.tokens
        reused = await refresh(base, registered, first.refresh_token or "")
        after_reuse = await post(base, "/metrics", f"Bearer {rotated.access_token}")
        second = Memory()
        async with oauth_client(base, Browser(login="alice"), second) as client:  # a new sign-in, the same user
            await client.call_tool("search_tools", {"query": "echo a text back"})
        assert second.tokens is not None and second.client is not None
        token, other = second.tokens.access_token, second.client.model_dump(mode="json")
        not_its_own = await form(base, "/revoke", {"token": token, "client_id": registered["client_id"],
                                                   "client_secret": registered["client_secret"]})
        still = await post(base, "/metrics", f"Bearer {token}")
        revoked = await form(base, "/revoke", {"token": token, "client_id": other["client_id"],
                                               "client_secret": other["client_secret"]})
        with_revoked = await post(base, "/metrics", f"Bearer {token}")
        with_key = await post(base, "/metrics", f"Bearer {key}")
    users = run_cli("users", "list", "--database-url", database_url)
    logged = log.read_text(errors="replace")
    secrets_seen = [first.access_token, first.refresh_token, rotated.access_token, rotated.refresh_token, token,
                    registered["client_secret"], CLIENT_SECRET]
    assert "issuer" in logged and not [s for s in secrets_seen if s and s in logged]  # no secret in the log
    assert anonymous.status_code == 401
    assert 'resource_metadata="' in anonymous.headers["www-authenticate"]
    assert found is not None and found["results"][0]["tool_id"] == "faulty:echo"
    assert not refreshed.is_error and returning.stops == []
    assert rotated.refresh_token not in (None, first.refresh_token) and rotated.access_token != first.access_token
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert after_reuse.status_code == 401  # a replayed refresh token ends its whole grant
    assert 'error="invalid_token"' in after_reuse.headers["www-authenticate"]
    assert not_its_own.status_code == 200 and still.status_code == 200  # another client's token is not revoked
    assert revoked.status_code == 200 and with_revoked.status_code == 401
    assert with_key.status_code == 200  # API keys keep working beside OAuth
    assert re.search(r"alice\s.*oidc", users.stdout) and re.search(r"scripted\s.*key", users.stdout), users.stdout


async def authorize(base: str, query: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(timeout=30, follow_redirects=False) as http:
        return await http.get(f"{base}/authorize?{urlencode(query)}")


def redirected(answer: httpx2.Response) -> dict[str, str]:
    """The query of a redirect to the client's redirect URI."""
    assert answer.status_code == 302 and answer.headers["location"].startswith(REDIRECT), answer.text
    return {k: v[0] for k, v in parse_qs(urlsplit(answer.headers["location"]).query).items()}


def stored(database_url: str, table: str, column: str) -> set[str]:
    return {str(row[0]) for row in sql(database_url, f"SELECT {column} FROM {table}")}


async def test_each_broken_step_is_refused_with_the_error_the_specs_name(
    indexed: Path, database_url: str, tmp_path: Path, upstream: Upstream  # noqa: F811
) -> None:
    log = tmp_path / "gateway.log"
    with oauth_gateway(indexed, database_url, log, upstream.issuer, "--oauth-open-signup"):
        base = await base_url(log)
        client = await register(base)
        verifier, challenge = pkce()
        got = await signed_in(base, client, Browser(login="bob"), challenge)
        wrong_verifier = await exchange(base, client, got["code"], pkce()[0])
        wrong_secret = await exchange(base, {**client, "client_secret": "not-its-secret"}, got["code"], verifier)
        tokens = await exchange(base, client, got["code"], verifier)
        access = tokens.json()["access_token"]
        before_reuse = await post(base, "/metrics", f"Bearer {access}")
        reused = await exchange(base, client, got["code"], verifier)
        after_reuse = await post(base, "/metrics", f"Bearer {access}")

        late_verifier, late_challenge = pkce()
        late = await signed_in(base, client, Browser(login="bob"), late_challenge)
        sql(database_url, "UPDATE oauth_code SET expires_at = now() - interval '1 second' WHERE used_at IS NULL")
        expired = await exchange(base, client, late["code"], late_verifier)

        base_query = {"response_type": "code", "client_id": client["client_id"], "redirect_uri": REDIRECT,
                      "code_challenge": challenge, "code_challenge_method": "S256", "state": "s"}
        unregistered = await authorize(base, {**base_query, "redirect_uri": "http://127.0.0.1:9/elsewhere"})
        plain = await authorize(base, {**base_query, "code_challenge_method": "plain", "code_challenge": verifier})
        elsewhere = await authorize(base, {**base_query, "resource": ELSEWHERE})

        moved_verifier, moved_challenge = pkce()
        moved = await signed_in(base, client, Browser(login="bob"), moved_challenge)
        bound = (await exchange(base, client, moved["code"], moved_verifier)).json()["access_token"]
        own_resource = await post(base, "/metrics", f"Bearer {bound}")
        digest = hashlib.sha256(bound.encode()).hexdigest()
        sql(database_url, f"UPDATE oauth_token SET resource = '{ELSEWHERE}' WHERE token_hash = '{digest}'")
        other_resource = await post(base, "/metrics", f"Bearer {bound}")

        def tamper(url: str) -> str:
            return url.replace("state=", "state=x", 1) if "/oauth/callback" in url else url

        tampered = Browser(login="bob", tamper=tamper)
        query = {**base_query, "resource": f"{base}/mcp"}
        await tampered.visit(f"{base}/authorize?{urlencode(query)}")
    assert got["state"] == "client-state" and "code" in got
    assert (wrong_verifier.status_code, wrong_verifier.json()["error"]) == (400, "invalid_grant")
    assert (wrong_secret.status_code, wrong_secret.json()["error"]) == (401, "invalid_client")
    assert tokens.status_code == 200 and before_reuse.status_code == 200
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    assert after_reuse.status_code == 401  # a code presented again revokes what it gave
    assert (expired.status_code, expired.json()["error"]) == (400, "invalid_grant")
    assert "expired" in expired.json()["error_description"]
    assert (unregistered.status_code, unregistered.json()["error"]) == (400, "invalid_request")
    assert redirected(plain)["error"] == "invalid_request"
    assert redirected(elsewhere)["error"] == "invalid_target"
    assert own_resource.status_code == 200 and other_resource.status_code == 401
    assert 'error="invalid_token"' in other_resource.headers["www-authenticate"]
    assert tampered.stops[-1].startswith("400 ") and '"invalid_request"' in tampered.stops[-1]
    # Secrets are stored hashed only: no token, code or client secret in clear.
    hashes = stored(database_url, "oauth_token", "token_hash") | stored(database_url, "oauth_code", "code_hash")
    assert access not in hashes and hashlib.sha256(access.encode()).hexdigest() in hashes
    assert got["code"] not in hashes and hashlib.sha256(got["code"].encode()).hexdigest() in hashes
    assert stored(database_url, "oauth_client", "secret_hash") >= {
        hashlib.sha256(client["client_secret"].encode()).hexdigest()}


async def test_with_sign_up_closed_only_an_identity_an_admin_linked_signs_in(
    indexed: Path, database_url: str, tmp_path: Path, upstream: Upstream  # noqa: F811
) -> None:
    log = tmp_path / "gateway.log"
    with oauth_gateway(indexed, database_url, log, upstream.issuer):
        base = await base_url(log)
        client = await register(base)
        refused = await signed_in(base, client, Browser(login="carol"), pkce()[1])
        linked = run_cli("users", "add", "carol", "--oidc-issuer", upstream.issuer, "--oidc-subject", "carol",
                         "--database-url", database_url)
        verifier, challenge = pkce()
        admitted = await signed_in(base, client, Browser(login="carol"), challenge)
        tokens = await exchange(base, client, admitted["code"], verifier)
        metrics = await post(base, "/metrics", f"Bearer {tokens.json()['access_token']}")
    users = sql(database_url, "SELECT username FROM users ORDER BY username")
    assert refused["error"] == "access_denied" and refused["state"] == "client-state"
    assert linked.returncode == 0, linked.stderr
    assert tokens.status_code == 200 and metrics.status_code == 200
    assert users == [("carol",)]  # the refused sign-in made no user
