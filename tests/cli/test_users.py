"""`pml-gateway users` against a real Postgres: the key `add` and `rotate` print authenticates, `list` shows no
secret, `revoke` ends a key, and an unknown or taken username is an error (exit 1)."""

from __future__ import annotations

import os

import anyio
import pytest

from gateway import cli
from gateway.db import UserStore, open_pool
from gateway.errors import AuthenticationError
from gateway.services.auth import Authenticator


@pytest.fixture(autouse=True)
def _no_pml_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``PML_*`` of the developer's shell leaks into the in-process runs; tables wide enough to read."""
    for key in [k for k in os.environ if k.startswith("PML_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "200")


def users(url: str, *argv: str) -> int:
    return cli.main(["users", *argv, "--database-url", url])


def printed_key(out: str) -> str:
    """The key on the line after the one that says it is shown only once."""
    lines = out.splitlines()
    notice = next(i for i, line in enumerate(lines) if "shown only this once" in line)
    return lines[notice + 1].strip()


def authenticated_as(url: str, key: str) -> str | None:
    """The username `key` authenticates as, or None when it is refused."""

    async def check() -> str | None:
        pool = await open_pool(url, max_size=1)
        try:
            return (await Authenticator(UserStore(pool)).authenticate(f"Bearer {key}")).username
        except AuthenticationError:
            return None
        finally:
            await pool.close()

    return anyio.run(check)


def test_add_prints_a_key_once_that_authenticates(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert users(database_url, "add", "ada", "--role", "admin") == 0
    out = capsys.readouterr().out
    key = printed_key(out)
    assert key.startswith("ac_") and len(key) == 35 and out.count(key) == 1
    assert authenticated_as(database_url, key) == "ada"


def test_list_shows_the_users_and_no_key_or_hash(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert users(database_url, "add", "ada", "--role", "ops") == 0
    key = printed_key(capsys.readouterr().out)
    assert users(database_url, "list") == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if " ada " in line)
    assert "ops" in row and key[:11] in row
    assert key not in out and "argon2" not in out
    assert "1 users" in out


def listed(url: str, capsys: pytest.CaptureFixture[str]) -> dict[str, list[str]]:
    """`users list` as {username: [role, key prefix, created, revoked, signs in with]}."""
    capsys.readouterr()
    assert users(url, "list") == 0
    cells = [line.strip()[1:-1].split("│") for line in capsys.readouterr().out.splitlines() if line.startswith("│")]
    return {row[0].strip(): [cell.strip() for cell in row[1:]] for row in cells if row[0].strip() != "username"}


def test_revoke_ends_the_key_and_list_shows_when(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert users(database_url, "add", "ada") == 0
    key = printed_key(capsys.readouterr().out)
    assert listed(database_url, capsys)["ada"][3] == ""
    assert users(database_url, "revoke", "ada") == 0
    assert "revoked the key of ada" in capsys.readouterr().out
    assert authenticated_as(database_url, key) is None
    role, prefix, created, revoked, _ = listed(database_url, capsys)["ada"]
    assert (role, prefix) == ("user", key[:11]) and revoked >= created > "2000"


def test_rotate_prints_a_new_key_and_the_old_one_stops_working(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert users(database_url, "add", "ada") == 0
    old = printed_key(capsys.readouterr().out)
    assert users(database_url, "rotate", "ada") == 0
    new = printed_key(capsys.readouterr().out)
    assert new != old
    assert authenticated_as(database_url, old) is None
    assert authenticated_as(database_url, new) == "ada"


def test_an_unknown_or_taken_username_exits_1_with_a_clear_message(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert users(database_url, "add", "ada") == 0
    capsys.readouterr()
    assert users(database_url, "add", "ada") == 1
    assert "user 'ada' already exists" in capsys.readouterr().err
    for verb in ("revoke", "rotate"):
        assert users(database_url, verb, "nobody") == 1
        captured = capsys.readouterr()
        assert "no user 'nobody'" in captured.err and captured.out == ""


def test_an_identity_linked_at_add_is_listed_as_a_way_to_sign_in(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert users(database_url, "add", "ada", "--oidc-issuer", "https://id.example", "--oidc-subject", "a1") == 0
    assert users(database_url, "add", "bob", "--github-id", "42") == 0
    assert users(database_url, "add", "cy") == 0
    found = listed(database_url, capsys)
    assert [found[name][4] for name in ("ada", "bob", "cy")] == ["key, oidc", "key, github", "key"]
