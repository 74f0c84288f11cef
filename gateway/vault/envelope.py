"""Envelope encryption of one secret: a fresh AES-256-GCM data key per secret, wrapped by a master key.

The ciphertext and the wrapped data key are both bound to the secret's associated data (its owner and name), so
neither can be moved to another user's or another name's row and still open. Rotating the master key re-wraps
the data key only (`rewrap`): the ciphertext stays as it is.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gateway.errors import SecretError
from gateway.models import Sealed
from gateway.vault.keys import KEY_BYTES, NONCE_BYTES, KeyWrapper


def associated_data(owner: str, name: str) -> bytes:
    """What binds a sealed secret to its owner and name."""
    return f"pml-gateway secret v1\x00{owner}\x00{name}".encode()


def seal(plaintext: bytes, aad: bytes, wrapper: KeyWrapper) -> Sealed:
    data_key = AESGCM.generate_key(bit_length=KEY_BYTES * 8)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, aad)
    key_id, wrapped = wrapper.wrap(data_key, aad)
    return Sealed(key_id=key_id, wrapped_key=wrapped, nonce=nonce, ciphertext=ciphertext)


def open_sealed(sealed: Sealed, aad: bytes, wrapper: KeyWrapper) -> bytes:
    data_key = wrapper.unwrap(sealed.key_id, sealed.wrapped_key, aad)
    try:
        return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, aad)
    except InvalidTag:
        raise SecretError("a secret does not decrypt: it was altered, or moved from another secret") from None


def rewrap(sealed: Sealed, aad: bytes, wrapper: KeyWrapper) -> Sealed:
    """`sealed` with its data key wrapped by the wrapper's current key."""
    data_key = wrapper.unwrap(sealed.key_id, sealed.wrapped_key, aad)
    key_id, wrapped = wrapper.wrap(data_key, aad)
    return Sealed(key_id=key_id, wrapped_key=wrapped, nonce=sealed.nonce, ciphertext=sealed.ciphertext)
