"""Learned capabilities, pure: the canonical form and hash of a DAG, its parameters, and capability names.

No I/O here: the capability service stores what `canonicalize` gives and names it with `naming`.
"""

from gateway.capabilities.canonical import Canonical, canonicalize, document_hash, instantiate
from gateway.capabilities.naming import (
    DEFAULT_ORG,
    DEFAULT_PROJECT,
    check_action,
    check_namespace,
    default_action,
    display_name,
    fqdn,
    glob_to_like,
    namespace_for,
)

__all__ = [
    "DEFAULT_ORG",
    "DEFAULT_PROJECT",
    "Canonical",
    "canonicalize",
    "check_action",
    "check_namespace",
    "default_action",
    "display_name",
    "document_hash",
    "fqdn",
    "glob_to_like",
    "instantiate",
    "namespace_for",
]
