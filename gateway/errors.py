"""The one exception tree of the gateway.

Every error the gateway raises on purpose derives from `GatewayError`; foreign errors (psycopg, mcp,
onnxruntime, OSError) are translated at one boundary each with ``raise ... from exc``::

    GatewayError
    ├── ConfigError            bad settings or servers file: names the file, server and key
    ├── InvalidRequestError    a request's arguments do not fit: names the field and what was expected
    ├── DatabaseError          Postgres cannot be reached, started or queried
    │   ├── DataDirLockedError another gateway owns the embedded data directory
    │   └── MigrationError     a migration failed; nothing of it was applied
    ├── EmbeddingError         the ONNX model or tokenizer cannot be loaded or run
    └── DownstreamError        a downstream MCP server failed; names the server
        ├── ServerUnavailableError  not running (starting, failed, disabled, restarting)
        ├── ServerCrashedError      the connection died during the call
        ├── CallTimeoutError        the call did not answer within its timeout
        └── UnknownToolError        no such tool (or server) is known
"""

from __future__ import annotations


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose; its message is meant for the user."""


class ConfigError(GatewayError):
    """The settings or the servers file are wrong."""


class InvalidRequestError(GatewayError):
    """A request's arguments do not match what the tool expects."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class DatabaseError(GatewayError):
    """Postgres cannot be reached, started or queried."""


class DataDirLockedError(DatabaseError):
    """Another gateway process owns the embedded Postgres data directory."""


class MigrationError(DatabaseError):
    """A migration failed; its transaction was rolled back."""


class EmbeddingError(GatewayError):
    """The embedding model cannot be loaded or run."""


class DownstreamError(GatewayError):
    """A downstream MCP server failed; `server` names it."""

    def __init__(self, message: str, *, server: str) -> None:
        super().__init__(message)
        self.server = server


class ServerUnavailableError(DownstreamError):
    """The server is not connected (starting, failed, disabled or restarting)."""


class ServerCrashedError(DownstreamError):
    """The server's connection died while a call was in flight."""


class CallTimeoutError(DownstreamError):
    """The call did not answer within its timeout."""


class UnknownToolError(DownstreamError):
    """The server or tool is not known."""
