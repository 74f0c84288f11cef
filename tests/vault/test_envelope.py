"""Envelope encryption: each secret under its own data key, bound to its owner and name, re-wrapped on rotation."""

from __future__ import annotations

import dataclasses
import os
import stat
from pathlib import Path

import pytest

from gateway.errors import ConfigError, SecretError
from gateway.vault import (
    KeyRing,
    ReloadingKeyRing,
    associated_data,
    generate_key_line,
    load_keyring,
    open_sealed,
    parse_keyring,
    rewrap,
    seal,
    write_keyring,
)

OLD, NEW = generate_key_line(), generate_key_line()


def test_a_sealed_secret_opens_only_with_its_owner_and_name_and_never_holds_the_clear_text() -> None:
    keys = parse_keyring(OLD, "test")
    sealed = seal(b"ghp_s3cret-token", associated_data("alice", "GITHUB_TOKEN"), keys)
    assert b"ghp_s3cret" not in sealed.ciphertext + sealed.wrapped_key
    assert open_sealed(sealed, associated_data("alice", "GITHUB_TOKEN"), keys) == b"ghp_s3cret-token"
    with pytest.raises(SecretError, match="moved from another secret"):
        open_sealed(sealed, associated_data("bob", "GITHUB_TOKEN"), keys)
    with pytest.raises(SecretError):
        open_sealed(sealed, associated_data("alice", "OTHER"), keys)


def test_two_seals_of_one_value_share_neither_key_nor_ciphertext() -> None:
    keys = parse_keyring(OLD, "test")
    aad = associated_data("alice", "T")
    one, two = seal(b"same", aad, keys), seal(b"same", aad, keys)
    assert one.ciphertext != two.ciphertext and one.wrapped_key != two.wrapped_key and one.nonce != two.nonce


def test_an_altered_ciphertext_or_wrapped_key_is_refused() -> None:
    keys = parse_keyring(OLD, "test")
    aad = associated_data("alice", "T")
    sealed = seal(b"value", aad, keys)
    flipped = bytes([sealed.ciphertext[0] ^ 1]) + sealed.ciphertext[1:]
    with pytest.raises(SecretError, match="altered"):
        open_sealed(dataclasses.replace(sealed, ciphertext=flipped), aad, keys)
    with pytest.raises(SecretError, match="altered"):
        open_sealed(dataclasses.replace(sealed, wrapped_key=sealed.wrapped_key[:-1] + b"\0"), aad, keys)


def test_rotation_rewraps_the_data_key_under_the_new_key_and_the_old_key_can_then_go() -> None:
    aad = associated_data("alice", "T")
    before = parse_keyring(OLD, "test")
    sealed = seal(b"value", aad, before)
    during = parse_keyring(f"{OLD}\n{NEW}", "test")
    assert open_sealed(sealed, aad, during) == b"value"  # reads keep working mid-rotation
    moved = rewrap(sealed, aad, during)
    assert moved.key_id == NEW.partition(":")[0] and moved.ciphertext == sealed.ciphertext
    after = parse_keyring(NEW, "test")
    assert open_sealed(moved, aad, after) == b"value"
    with pytest.raises(SecretError, match="not in the keyring"):
        open_sealed(sealed, aad, after)


def test_the_keyring_file_is_created_private_and_a_bad_entry_is_named(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    with pytest.raises(ConfigError, match="no master keyring"):
        load_keyring(environ_value=None, path=path, create=False)
    keys = load_keyring(environ_value=None, path=path, create=True)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and len(keys.ids) == 1
    assert load_keyring(environ_value=None, path=path, create=False).ids == keys.ids
    assert load_keyring(environ_value=f"{OLD},{NEW}", path=path, create=False).current_id == NEW.partition(":")[0]
    with pytest.raises(ConfigError, match="entry 2"):
        parse_keyring(f"{OLD}\nk1:short", "PML_MASTER_KEY")
    with pytest.raises(ConfigError, match="appears twice"):
        parse_keyring(f"{OLD}\n{OLD}", "PML_MASTER_KEY")


def test_a_reloading_keyring_is_read_when_first_needed_and_again_for_a_key_it_does_not_hold(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    loads: list[int] = []

    def load() -> KeyRing:
        loads.append(1)
        return load_keyring(environ_value=None, path=path, create=False)

    keys = ReloadingKeyRing(load)  # the gateway starts before any keyring exists: nothing is read yet
    assert loads == []
    aad = associated_data("alice", "T")
    write_keyring(path, [OLD])
    sealed = seal(b"value", aad, keys)
    write_keyring(path, [OLD, NEW])  # `rotate-master` in another process
    moved = rewrap(sealed, aad, parse_keyring(f"{OLD}\n{NEW}", "cli"))
    assert open_sealed(moved, aad, keys) == b"value" and len(loads) == 2
    assert open_sealed(sealed, aad, keys) == b"value" and len(loads) == 2
