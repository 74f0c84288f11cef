"""The OAuth server's state in a real Postgres: a code exchanged once, a refresh token used once, a grant revoked
whole, identities found or made, expired rows pruned."""

from __future__ import annotations

import anyio
import pytest

from gateway.db import Pool
from gateway.db.oauth import OAuthStore
from gateway.db.retention import RetentionStore

pytestmark = pytest.mark.anyio

ISSUER = "https://id.example"


@pytest.fixture
def store(pool: Pool) -> OAuthStore:
    return OAuthStore(pool)


async def signed_in(store: OAuthStore, name: str = "ada") -> str:
    user = await store.add_signed_in(name, email=None, kind="oidc", issuer=ISSUER, subject=f"sub-{name}")
    assert user is not None
    return user.id


async def new_code(store: OAuthStore, user_id: str, code_hash: str = "c1", ttl_s: float = 300.0) -> None:
    await store.add_client("client", secret_hash="s" * 64, metadata={"client_id": "client"})
    await store.add_code(code_hash, ttl_s=ttl_s, client_id="client", user_id=user_id, redirect_uri="https://c/cb",
                         redirect_uri_explicit=True, code_challenge="x", scopes=["mcp"], resource="https://g/mcp")


async def test_a_code_is_exchanged_once_even_by_racing_exchanges(store: OAuthStore) -> None:
    await new_code(store, await signed_in(store))
    wins: list[bool] = []

    async def exchange() -> None:
        wins.append(await store.use_code("c1"))

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(exchange)
    code = await store.code("c1")
    assert sorted(wins) == [False] * 4 + [True]
    assert code is not None and code.used and code.scopes == ["mcp"] and code.resource == "https://g/mcp"


async def test_a_refresh_token_is_used_once_and_a_revoked_grant_ends_all_its_tokens(store: OAuthStore) -> None:
    user = await signed_in(store)
    await new_code(store, user)
    code = await store.code("c1")
    assert code is not None
    fields = {"grant_id": code.grant_id, "client_id": "client", "user_id": user, "scopes": ["mcp"], "resource": None}
    await store.add_token("a1", kind="access", ttl_s=3600, **fields)
    await store.add_token("r1", kind="refresh", ttl_s=3600, **fields)
    assert await store.use_refresh_token("r1") and not await store.use_refresh_token("r1")
    assert not await store.use_refresh_token("a1")  # an access token is no refresh token
    access = await store.token("a1")
    assert access is not None and not access.revoked and access.username == "ada"
    await store.revoke_grant(code.grant_id)
    revoked = await store.token("a1")
    assert revoked is not None and revoked.revoked


async def test_an_identity_finds_its_user_and_a_taken_username_makes_none(store: OAuthStore) -> None:
    user = await signed_in(store)
    found = await store.find_identity(kind="oidc", issuer=ISSUER, subject="sub-ada")
    other_issuer = await store.find_identity(kind="oidc", issuer="https://other.example", subject="sub-ada")
    taken = await store.add_signed_in("ada", email=None, kind="github", issuer="github", subject="7")
    assert found is not None and found.id == user and other_issuer is None and taken is None
    assert await store.link_identity("ada", github_id="7")
    github = await store.find_identity(kind="github", issuer="github", subject="7")
    assert github is not None and github.id == user
    assert not await store.link_identity("nobody", github_id="8")


async def test_a_pending_sign_in_is_taken_once_and_expired_state_is_pruned(store: OAuthStore, pool: Pool) -> None:
    user = await signed_in(store)
    await new_code(store, user, code_hash="old", ttl_s=-2 * 86400)
    await store.add_pending("p1", client_id="client", request={"state": "s"}, ttl_s=900)
    await store.add_pending("p2", client_id="client", request={}, ttl_s=-1)
    taken = await store.take_pending("p1")
    assert taken is not None and taken.live and taken.request == {"state": "s"}
    assert await store.take_pending("p1") is None
    deleted = await RetentionStore(pool).prune()
    assert (deleted["oauth_pending"], deleted["oauth_code"], deleted["oauth_token"]) == (1, 1, 0)
