"""The MCP face: meta-tool schemas and thin handlers; errors become `isError` results or MCP errors."""

from gateway.server.backend import GatewayBackend
from gateway.server.gateway import build_server, error_result

__all__ = ["GatewayBackend", "build_server", "error_result"]
