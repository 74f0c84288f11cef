"""Secrets at rest: AES-256-GCM envelope encryption under master keys a file, the environment or a KMS holds."""

from gateway.models import Sealed
from gateway.vault.envelope import associated_data, open_sealed, rewrap, seal
from gateway.vault.keys import (
    KeyRing,
    KeyWrapper,
    ReloadingKeyRing,
    generate_key_line,
    load_keyring,
    parse_keyring,
    write_keyring,
)

__all__ = [
    "KeyRing", "KeyWrapper", "ReloadingKeyRing", "Sealed", "associated_data", "generate_key_line", "load_keyring",
    "open_sealed", "parse_keyring", "rewrap", "seal", "write_keyring",
]
