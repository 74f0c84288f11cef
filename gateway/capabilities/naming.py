"""Capability names: the FQDN ``org.project.namespace.action.hash4``, the display name, and their rules.

A capability is registered under ``local.default.<namespace>.exec_<hash8>.<hash4>`` (namespace: the first
tool's server) until it is renamed; users see and search it as ``namespace:action``.
"""

from __future__ import annotations

import re

from gateway.errors import InvalidRequestError

DEFAULT_ORG = "local"
DEFAULT_PROJECT = "default"
FALLBACK_NAMESPACE = "tools"
GENERATED_ACTION_PREFIX = "exec_"
NAMESPACE_MAX = 20
ACTION_MAX = 50
_NAMESPACE = re.compile(r"[a-z][a-z0-9]*")
_ACTION = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_NOT_NAMESPACE_CHAR = re.compile(r"[^a-z0-9]")


def fqdn(org: str, project: str, namespace: str, action: str, hash4: str) -> str:
    """The fully qualified name ``org.project.namespace.action.hash4``."""
    return f"{org}.{project}.{namespace}.{action}.{hash4}"


def display_name(namespace: str, action: str) -> str:
    """The name users see and search: ``namespace:action``."""
    return f"{namespace}:{action}"


def default_action(hash: str) -> str:
    """The action of a capability not yet renamed: ``exec_`` and the first 8 characters of its hash."""
    return GENERATED_ACTION_PREFIX + hash[:8]


def check_namespace(name: str) -> None:
    """Raise `InvalidRequestError` (field ``namespace``) unless `name` is a valid namespace."""
    if len(name) > NAMESPACE_MAX or not _NAMESPACE.fullmatch(name):
        raise InvalidRequestError(
            f"namespace must be 1 to {NAMESPACE_MAX} lowercase letters or digits, starting with a letter; got {name!r}",
            field="namespace",
        )


def check_action(name: str) -> None:
    """Raise `InvalidRequestError` (field ``action``) unless `name` is a valid action a user may choose."""
    if len(name) > ACTION_MAX or not _ACTION.fullmatch(name):
        raise InvalidRequestError(
            f"action must be 1 to {ACTION_MAX} letters, digits or '_', starting with a letter; got {name!r}",
            field="action",
        )
    if name.startswith(GENERATED_ACTION_PREFIX):
        raise InvalidRequestError(
            f"action must not start with {GENERATED_ACTION_PREFIX!r}, kept for generated names; got {name!r}",
            field="action",
        )


def namespace_for(server: str) -> str:
    """A valid namespace made from a server name: lowercased, other than letters and digits dropped, ``n``
    put before a leading digit, cut to 20 characters; ``tools`` when nothing is left."""
    name = _NOT_NAMESPACE_CHAR.sub("", server.lower())
    if name[:1].isdigit():
        name = "n" + name
    return name[:NAMESPACE_MAX] or FALLBACK_NAMESPACE


def glob_to_like(pattern: str) -> str:
    """A SQL LIKE pattern matching what the glob `pattern` (``*``: any run, ``?``: one character) matches.

    ``\\``, ``%`` and ``_`` in `pattern` are escaped with a backslash, so the caller must bind the result as a
    parameter and write ``... LIKE %s ESCAPE '\\'`` (Postgres' default escape is the backslash too; naming it
    keeps the query's meaning in the query).
    """
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")
