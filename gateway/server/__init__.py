"""The MCP face: meta-tool schemas and thin handlers; errors become `isError` results or MCP errors."""

from gateway.server.gateway import GatewayBackend, build_server, error_result
from gateway.server.names import NameTable

__all__ = ["GatewayBackend", "NameTable", "build_server", "error_result"]
