"""What the gateway's OAuth server decides apart from the protocol: lifetimes, secrets and their hashes, and
which user an upstream identity signs in as.

Every secret the server hands out (client secret, state, code, token) is 256 random bits, stored as its SHA-256
only. Our PKCE verifier and nonce towards the upstream are derived from the state we send there, so the database
holds neither (only the state's hash). Sign-up is closed unless ``--oauth-open-signup``: an identity no user is
linked to is refused, and an admin links one with ``users add NAME --github-id ID`` or ``--oidc-subject SUB``.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from typing import Protocol

from gateway.errors import SignInError
from gateway.services.upstream import Identity

CODE_TTL_S = 300.0
"""An authorization code lives 5 minutes (RFC 6749 recommends 10 at most)."""
PENDING_TTL_S = 900.0
"""A sign-in waiting for the upstream lives 15 minutes (the seed's ``auth/pending:*``)."""
ACCESS_TTL_S = 3600
REFRESH_TTL_S = 30 * 24 * 3600
USERNAME_TRIES = 20
"""Usernames tried for a first sign-in (``alice``, ``alice-2``, ...) before giving up."""
_NOT_IN_USERNAME = re.compile(r"[^A-Za-z0-9._-]+")


class _User(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def revoked(self) -> bool: ...


class Identities(Protocol):
    async def find_identity(self, *, kind: str, issuer: str, subject: str) -> _User | None: ...

    async def add_signed_in(self, username: str, *, email: str | None, kind: str, issuer: str,
                            subject: str) -> _User | None: ...


def new_secret() -> str:
    """256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def secret_hash(secret: str) -> str:
    """The SHA-256 of `secret`, hex: what the database keeps."""
    return hashlib.sha256(secret.encode()).hexdigest()


def upstream_verifier(state: str) -> str:
    """Our PKCE code verifier towards the upstream for the sign-in of `state` (43 characters, RFC 7636)."""
    return _derived(b"pkce-verifier:", state)


def upstream_nonce(state: str) -> str:
    return _derived(b"oidc-nonce:", state)


def s256(verifier: str) -> str:
    """The S256 code challenge of `verifier`."""
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


async def signed_in_user(store: Identities, identity: Identity, *, open_signup: bool) -> str:
    """The id of the user `identity` signs in as: the linked one, or (open sign-up) a new one; else `SignInError`."""
    user = await store.find_identity(kind=identity.kind, issuer=identity.issuer, subject=identity.subject)
    if user is None and open_signup:
        for username in usernames(identity.username):
            user = await store.add_signed_in(username, email=identity.email, kind=identity.kind,
                                             issuer=identity.issuer, subject=identity.subject)
            if user is not None:
                break
    if user is None:
        raise SignInError(f"no user of this gateway is linked to {identity.kind} identity {identity.subject!r}")
    if user.revoked:
        raise SignInError("this user has been revoked")
    return user.id


def usernames(wanted: str) -> list[str]:
    """Candidate usernames for a first sign-in: `wanted` made valid, then numbered."""
    base = _NOT_IN_USERNAME.sub("-", wanted.split("@")[0]).strip("-._")[:56] or "user"
    return [base] + [f"{base}-{n}" for n in range(2, USERNAME_TRIES + 1)]


def _derived(label: bytes, state: str) -> str:
    digest = hashlib.sha256(label + state.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")
