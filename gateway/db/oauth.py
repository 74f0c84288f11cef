"""The OAuth authorization server's state in Postgres: `OAuthStore` keeps clients, pending sign-ins, codes and
tokens, each looked up by the SHA-256 of its secret (the caller hashes; no secret reaches this module).

A code is exchanged once (`use_code`), a refresh token used once (`use_refresh_token`): both are single
``UPDATE ... RETURNING`` statements, so two racing exchanges cannot both win. Codes and tokens of one sign-in
share a grant id, which `revoke_grant` ends at once; the retention prune deletes what expired. Users signed in
through the upstream identity provider are found or created here too (`find_identity`, `add_signed_in`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

from gateway.db.pool import Pool, translated
from gateway.db.queries import query as named_query

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ClientRow:
    """A registered client: its metadata as registered and the hash of its secret (None: a public client)."""

    client_id: str
    secret_hash: str | None
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PendingRow:
    """An /authorize request taken back at the upstream's callback; `live` is False once it expired."""

    client_id: str
    request: dict[str, Any]
    live: bool


@dataclass(frozen=True, slots=True)
class CodeRow:
    grant_id: str
    client_id: str
    user_id: str
    redirect_uri: str
    redirect_uri_explicit: bool
    code_challenge: str
    scopes: list[str]
    resource: str | None
    expires_at: float
    used: bool


@dataclass(frozen=True, slots=True)
class TokenRow:
    """An access or refresh token with its user; `revoked` also when the user was revoked."""

    kind: str
    grant_id: str
    client_id: str
    user_id: str
    username: str
    role: str
    scopes: list[str]
    resource: str | None
    expires_at: int
    revoked: bool


@dataclass(frozen=True, slots=True)
class SignedInUser:
    id: str
    username: str
    role: str
    revoked: bool


class OAuthStore:
    """Clients, pending sign-ins, codes, tokens and upstream identities over the pool."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def add_client(self, client_id: str, *, secret_hash: str | None, metadata: dict[str, Any]) -> None:
        await self._execute("insert_oauth_client", {"client_id": client_id, "secret_hash": secret_hash,
                                                    "metadata": Jsonb(metadata)}, "registering an OAuth client")

    async def client(self, client_id: str) -> ClientRow | None:
        return await self._one(ClientRow, "get_oauth_client", {"client_id": client_id}, "reading an OAuth client")

    async def add_pending(self, state_hash: str, *, client_id: str, request: dict[str, Any], ttl_s: float) -> None:
        params = {"state_hash": state_hash, "client_id": client_id, "request": Jsonb(request), "ttl_s": float(ttl_s)}
        await self._execute("insert_oauth_pending", params, "keeping a pending sign-in")

    async def take_pending(self, state_hash: str) -> PendingRow | None:
        """The pending sign-in of this state, deleted as it is read (a state is used once)."""
        return await self._one(PendingRow, "take_oauth_pending", {"state_hash": state_hash},
                               "taking a pending sign-in")

    async def add_code(self, code_hash: str, *, ttl_s: float, **fields: Any) -> None:
        """A new code of a new grant; `fields` are the columns of `oauth_code` (client_id, user_id, ...)."""
        await self._execute("insert_oauth_code", {"code_hash": code_hash, "ttl_s": float(ttl_s), **fields},
                            "issuing an authorization code")

    async def code(self, code_hash: str) -> CodeRow | None:
        return await self._one(CodeRow, "get_oauth_code", {"code_hash": code_hash}, "reading an authorization code")

    async def use_code(self, code_hash: str) -> bool:
        """Mark the code used; False when it was used (or expired) already."""
        return await self._scalar("use_oauth_code", {"code_hash": code_hash}, "using an authorization code") is not None

    async def add_token(self, token_hash: str, *, kind: str, ttl_s: float, **fields: Any) -> None:
        """A new token; `fields` are grant_id, client_id, user_id, scopes and resource."""
        params = {"token_hash": token_hash, "kind": kind, "ttl_s": float(ttl_s), **fields}
        await self._execute("insert_oauth_token", params, "issuing a token")

    async def token(self, token_hash: str) -> TokenRow | None:
        return await self._one(TokenRow, "get_oauth_token", {"token_hash": token_hash}, "reading a token")

    async def use_refresh_token(self, token_hash: str) -> bool:
        """Revoke the refresh token as it is used; False when it was revoked already."""
        return await self._scalar("use_oauth_refresh_token", {"token_hash": token_hash},
                                  "using a refresh token") is not None

    async def revoke_grant(self, grant_id: str) -> None:
        """Revoke every token of the grant."""
        await self._execute("revoke_oauth_grant", {"grant_id": grant_id}, "revoking a grant")

    async def find_identity(self, *, kind: str, issuer: str, subject: str) -> SignedInUser | None:
        """The user of a GitHub id (`kind` ``github``) or of an OIDC issuer and subject."""
        if kind == "github":
            return await self._one(SignedInUser, "find_user_by_github_id", {"subject": subject}, "finding a user")
        return await self._one(SignedInUser, "find_user_by_oidc", {"issuer": issuer, "subject": subject},
                               "finding a user")

    async def add_signed_in(self, username: str, *, email: str | None, kind: str, issuer: str,
                            subject: str) -> SignedInUser | None:
        """A new user for this identity; None when `username` is taken (try another)."""
        github = kind == "github"
        params = {"username": username, "email": email, "github_id": subject if github else None,
                  "oidc_issuer": None if github else issuer, "oidc_subject": None if github else subject}
        return await self._one(SignedInUser, "insert_signed_in_user", params, "adding a signed-in user")

    async def link_identity(self, username: str, *, github_id: str | None = None, oidc_issuer: str | None = None,
                            oidc_subject: str | None = None) -> bool:
        """Link an upstream identity to the user `username`; False when there is no such user."""
        params = {"username": username, "github_id": github_id, "oidc_issuer": oidc_issuer,
                  "oidc_subject": oidc_subject}
        return await self._scalar("link_identity", params, f"linking an identity to {username!r}") is not None

    async def _execute(self, name: str, params: dict[str, Any], action: str) -> None:
        async with translated(action), self._pool.connection() as conn:
            await conn.execute(named_query(name), params)

    async def _one(self, row: type[T], name: str, params: dict[str, Any], action: str) -> T | None:
        async with translated(action), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(row))
            return await (await cursor.execute(named_query(name), params)).fetchone()

    async def _scalar(self, name: str, params: dict[str, Any], action: str) -> Any:
        async with translated(action), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            return await (await cursor.execute(named_query(name), params)).fetchone()
