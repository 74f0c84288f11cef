"""The tool catalog: the tools this gateway routes, and their client-safe names (pure)."""

from gateway.catalog.names import NameTable, client_name
from gateway.catalog.tools import ToolCatalog

__all__ = ["NameTable", "ToolCatalog", "client_name"]
