"""The running gateway behind the MCP face: `Runtime` composes the supervisor, the tool catalog and the services
built once the index opens; `HttpGate` is its face to the HTTP transport."""

from gateway.runtime.core import Runtime
from gateway.runtime.gate import HttpGate

__all__ = ["HttpGate", "Runtime"]
