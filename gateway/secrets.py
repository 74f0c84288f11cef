"""Secrets of the servers file (env and header values, what ``${VAR}`` expands to) kept out of what is shown."""

from __future__ import annotations

from collections.abc import Collection, Iterable

REDACTED = "***"
"""What a secret is shown as."""
MIN_SECRET_CHARS = 6
"""Shorter values (``1``, ``true``, ``info``) are not redacted: they would garble every line and hide nothing."""


def worth_hiding(values: Iterable[str]) -> frozenset[str]:
    """The `values` long enough to be secrets (`MIN_SECRET_CHARS`)."""
    return frozenset(v for v in values if len(v) >= MIN_SECRET_CHARS)


def redact(text: str, secrets: Collection[str]) -> str:
    """`text` with each of `secrets` replaced by ``***``, longest first (a secret inside another goes whole)."""
    for secret in sorted(secrets, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
