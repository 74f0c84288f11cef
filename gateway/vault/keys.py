"""Master keys: the keyring that wraps each secret's data key, read from a file or an environment variable.

A keyring is lines (or, in an environment variable, comma-separated entries) ``<key id>:<base64url of 32
bytes>``; the last is the current key, which wraps every new data key, and the earlier ones still unwrap what
they wrapped until ``secrets rotate-master`` has re-wrapped it: a rotation needs no downtime. The file is
created, mode 0600, with one new key the first time a secret is stored. `KeyWrapper` is all the rest of the
gateway needs, so a key-management service can stand in for the keyring.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import ConfigError, SecretError

KEY_BYTES = 32
NONCE_BYTES = 12
_KEY_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class KeyWrapper(Protocol):
    """Wraps and unwraps data keys; bound to `aad` (the secret's owner and name) so a wrapped key moved to another
    secret does not unwrap."""

    @property
    def current_id(self) -> str: ...

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        """(the id of the key that wrapped it, the wrapped key)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class KeyRing:
    """Master keys by id, the last the current one (`KeyWrapper` with AES-256-GCM)."""

    keys: tuple[tuple[str, bytes], ...]
    source: str = field(default="keyring", compare=False)

    def __post_init__(self) -> None:
        if not self.keys:
            raise ConfigError(f"{self.source}: the master keyring holds no key")

    @property
    def current_id(self) -> str:
        return self.keys[-1][0]

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(key_id for key_id, _ in self.keys)

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        key_id, key = self.keys[-1]
        nonce = os.urandom(NONCE_BYTES)
        return key_id, nonce + AESGCM(key).encrypt(nonce, data_key, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        key = dict(self.keys).get(key_id)
        if key is None:
            raise SecretError(f"the master key {key_id!r} that wrapped this secret is not in the keyring "
                              f"({self.source}); was it removed before `secrets rotate-master` finished?")
        try:
            return AESGCM(key).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag:
            raise SecretError("a secret's data key does not unwrap: it was altered, or moved from another "
                              "secret") from None


class ReloadingKeyRing:
    """A `KeyWrapper` over a keyring read when first needed, and read again when a secret names a key it does not
    hold: a gateway started before the first secret was stored, or running through a `rotate-master`, keeps
    opening secrets without a restart."""

    def __init__(self, load: Callable[[], KeyRing]) -> None:
        self._load = load
        self._ring: KeyRing | None = None

    def _keys(self, *, fresh: bool = False) -> KeyRing:
        if self._ring is None or fresh:
            self._ring = self._load()
        return self._ring

    @property
    def current_id(self) -> str:
        return self._keys().current_id

    def wrap(self, data_key: bytes, aad: bytes) -> tuple[str, bytes]:
        return self._keys().wrap(data_key, aad)

    def unwrap(self, key_id: str, wrapped: bytes, aad: bytes) -> bytes:
        ring = self._keys()
        if key_id not in ring.ids:
            ring = self._keys(fresh=True)
        return ring.unwrap(key_id, wrapped, aad)


def generate_key_line() -> str:
    """A new keyring entry: a random id and a random 32-byte key."""
    key = base64.urlsafe_b64encode(secrets.token_bytes(KEY_BYTES)).decode().rstrip("=")
    return f"k{secrets.token_hex(4)}:{key}"


def parse_keyring(text: str, source: str) -> KeyRing:
    """The keyring in `text` (lines or comma-separated entries); `ConfigError` naming `source` and the entry."""
    lines = [line for line in text.splitlines() if not line.strip().startswith("#")]
    entries = [e.strip() for line in lines for e in line.split(",") if e.strip()]
    keys: list[tuple[str, bytes]] = []
    for n, entry in enumerate(entries, 1):
        key_id, sep, encoded = entry.partition(":")
        if not sep or not _KEY_ID.match(key_id):
            raise ConfigError(f"{source}: entry {n} must be <key id>:<base64 key> with an id of letters, digits, _ "
                              "or -")
        try:
            key = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigError(f"{source}: the key of entry {n} ({key_id}) must be {KEY_BYTES} bytes in base64")
        if key_id in dict(keys):
            raise ConfigError(f"{source}: the key id {key_id} appears twice")
        keys.append((key_id, key))
    return KeyRing(tuple(keys), source=source)


def load_keyring(*, environ_value: str | None, path: Path, create: bool) -> KeyRing:
    """The keyring from the environment variable's value if set, else from `path` (created with one new key when
    `create` and missing)."""
    if environ_value:
        return parse_keyring(environ_value, "PML_MASTER_KEY")
    if not path.exists():
        if not create:
            raise ConfigError(f"no master keyring at {path}: no secret was ever stored with it (set PML_MASTER_KEY "
                              "or PML_MASTER_KEY_FILE to use another)")
        write_keyring(path, [generate_key_line()])
    try:
        return parse_keyring(path.read_text(encoding="utf-8"), str(path))
    except OSError as exc:
        raise ConfigError(f"cannot read the master keyring {path}: {exc.strerror}") from exc


def write_keyring(path: Path, lines: Sequence[str]) -> None:
    """Write `lines` to `path` atomically, readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("# pml-gateway master keys: <id>:<base64 key>, the last is current; keep this file secret\n")
        handle.write("\n".join(lines) + "\n")
    os.replace(temporary, path)
