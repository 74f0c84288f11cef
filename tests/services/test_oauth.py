"""What the OAuth server decides apart from the protocol: hashes, derived PKCE values, usernames, sign-up."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

import pytest

from gateway.errors import SignInError
from gateway.services import oauth
from gateway.services.upstream import Identity

pytestmark = pytest.mark.anyio


@dataclass
class User:
    id: str
    revoked: bool = False


class Identities:
    def __init__(self, known: dict[str, User], taken: set[str]) -> None:
        self.known, self.taken, self.added = known, taken, list[str]()

    async def find_identity(self, *, kind: str, issuer: str, subject: str) -> User | None:
        return self.known.get(subject)

    async def add_signed_in(self, username: str, *, email: str | None, kind: str, issuer: str,
                            subject: str) -> User | None:
        if username in self.taken:
            return None
        self.added.append(username)
        return User(id=f"new-{username}")


ALICE = Identity(kind="oidc", issuer="https://id.example", subject="a1", username="alice@example.test")


def test_the_upstream_verifier_is_a_valid_pkce_verifier_and_its_challenge_is_s256() -> None:
    verifier = oauth.upstream_verifier("state")
    assert 43 <= len(verifier) <= 128 and verifier != oauth.upstream_verifier("other")
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    assert oauth.s256(verifier) == expected and oauth.upstream_nonce("state") != verifier


def test_a_secret_is_stored_as_its_sha256() -> None:
    secret = oauth.new_secret()
    assert len(secret) >= 43 and oauth.secret_hash(secret) == hashlib.sha256(secret.encode()).hexdigest()


def test_usernames_are_made_valid_then_numbered() -> None:
    assert oauth.usernames("Jo Smith@x.org")[:3] == ["Jo-Smith", "Jo-Smith-2", "Jo-Smith-3"]
    assert oauth.usernames("@@")[0] == "user"


async def test_with_sign_up_closed_an_unlinked_identity_is_refused() -> None:
    store = Identities({}, set())
    with pytest.raises(SignInError, match="no user of this gateway"):
        await oauth.signed_in_user(store, ALICE, open_signup=False)
    assert store.added == []


async def test_open_sign_up_takes_the_next_free_username_and_a_revoked_user_is_refused() -> None:
    store = Identities({"b1": User("bob", revoked=True)}, {"alice", "alice-2"})
    assert await oauth.signed_in_user(store, ALICE, open_signup=True) == "new-alice-3"
    with pytest.raises(SignInError, match="revoked"):
        await oauth.signed_in_user(store, Identity(kind="oidc", issuer="i", subject="b1", username="bob"),
                                   open_signup=True)
