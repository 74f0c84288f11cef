"""Client-safe tool names: ``server__tool`` within ``^[a-zA-Z0-9_-]{1,64}$``, never colliding.

Pure code: the routing table maps each exposed name back to its ``(server, tool)``. A name that does not fit
as is (other characters, or longer than 64) is shortened and given a hash suffix of its tool id; two ids that
would still collide both take the hashed form, so the mapping never depends on listing order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable

MAX_NAME = 64
_SAFE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_UNSAFE_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
_HASH_LEN = 8


def plain_name(server: str, tool: str) -> str:
    return f"{server}__{tool}"


def hashed_name(server: str, tool: str) -> str:
    """A shortened, sanitised name ending in ``_`` + 8 hex of the tool id's SHA-256."""
    digest = hashlib.sha256(f"{server}:{tool}".encode()).hexdigest()[:_HASH_LEN]
    stem = _UNSAFE_CHARS.sub("_", plain_name(server, tool))[: MAX_NAME - _HASH_LEN - 1]
    return f"{stem}_{digest}"


def client_name(server: str, tool: str) -> str:
    """The exposed name of one tool taken alone (the table below also resolves collisions)."""
    name = plain_name(server, tool)
    return name if _SAFE.match(name) else hashed_name(server, tool)


class NameTable:
    """Exposed name <-> tool id, rebuilt whenever a server's tool list changes."""

    def __init__(self) -> None:
        self._tools: dict[str, set[str]] = {}
        self._by_name: dict[str, tuple[str, str]] = {}
        self._by_id: dict[str, str] = {}

    def set_server(self, server: str, tools: Iterable[str]) -> None:
        """Replace the tool names known for `server` and rebuild the mapping."""
        self._tools[server] = set(tools)
        self._rebuild()

    def resolve(self, name: str) -> tuple[str, str] | None:
        """``(server, tool)`` for an exposed name, or None."""
        return self._by_name.get(name)

    def name_of(self, server: str, tool: str) -> str:
        return self._by_id.get(f"{server}:{tool}") or client_name(server, tool)

    def names(self) -> list[tuple[str, str, str]]:
        """``(exposed name, server, tool)`` sorted by name."""
        return sorted((n, s, t) for n, (s, t) in self._by_name.items())

    def _rebuild(self) -> None:
        wanted: dict[str, list[tuple[str, str]]] = {}
        for server, tools in self._tools.items():
            for tool in tools:
                wanted.setdefault(client_name(server, tool), []).append((server, tool))
        by_name: dict[str, tuple[str, str]] = {}
        for name, owners in wanted.items():
            if len(owners) == 1:
                by_name[name] = owners[0]
            else:
                by_name.update({hashed_name(s, t): (s, t) for s, t in owners})
        self._by_name = by_name
        self._by_id = {f"{s}:{t}": n for n, (s, t) in by_name.items()}
