"""The one exception tree of the gateway.

Every error the gateway raises on purpose derives from `GatewayError`; foreign errors (psycopg, mcp,
onnxruntime, OSError) are translated at one boundary each with ``raise ... from exc``::

    GatewayError
    ├── ConfigError            bad settings or servers file: names the file, server and key
    ├── InvalidRequestError    a request's arguments do not fit: names the field and what was expected
    │   └── DagValidationError an `execute_dag` DAG does not validate: lists every problem found
    ├── OutputReferenceError   a task's `$OUTPUT[...]` reference does not fit its dependency's output
    ├── AuthenticationError    missing, malformed, unknown or revoked API key (one message; `reason` for logs)
    ├── DatabaseError          Postgres cannot be reached, started or queried
    │   ├── DatabaseUnavailableError  cannot serve now (unreachable, connection lost): may pass later
    │   ├── DatabaseInputError a value of the request refused (out of range, NUL): the request must change
    │   ├── DataDirLockedError another gateway owns the embedded data directory
    │   └── MigrationError     a migration failed; nothing of it was applied
    ├── EmbeddingError         the ONNX model or tokenizer cannot be loaded or run
    ├── SecretError            a stored secret cannot be opened (key missing from the keyring, altered data)
    ├── SignInError            OAuth sign-in through the upstream identity provider failed or was refused
    ├── CodeError              `execute_code`: the client's code failed in the sandbox (`kind`: its exception)
    │   └── CodeLimitError     the code hit a limit (`limit`: timeout_ms, memory, output, tool_calls, ...)
    └── DownstreamError        a downstream MCP server failed; names the server
        ├── ServerUnavailableError  not running (starting, failed, disabled, restarting)
        ├── ServerCrashedError      the connection died during the call
        ├── CallTimeoutError        the call did not answer within its timeout
        ├── ResultTooLargeError     the answer was larger than the server's maxResultBytes
        └── UnknownToolError        no such tool (or server) is known
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


class GatewayError(Exception):
    """Base of every error the gateway raises on purpose; its message is meant for the user."""


class ConfigError(GatewayError):
    """The settings or the servers file are wrong."""


class InvalidRequestError(GatewayError):
    """A request's arguments do not match what the tool expects."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True, slots=True)
class DagProblem:
    """One thing wrong with a submitted DAG.

    `task` is the task's id (None when the problem concerns the whole DAG or a task without a usable id);
    `field` is relative to that task (``tool``, ``arguments.path``) or else to the document (``tasks[3].id``,
    ``options.timeout_ms``); `message` is a whole sentence meant for the user.
    """

    task: str | None
    field: str
    message: str


class DagValidationError(InvalidRequestError):
    """An `execute_dag` DAG does not validate; `problems` lists all that was found, not only the first."""

    MAX_SHOWN = 50

    def __init__(self, problems: Sequence[DagProblem]) -> None:
        self.problems = list(problems)
        super().__init__(self._render(self.problems), field=self.problems[0].field if self.problems else None)

    @classmethod
    def _render(cls, problems: Sequence[DagProblem]) -> str:
        if len(problems) <= 1:
            return problems[0].message if problems else "the DAG is not valid"
        lines = [f"{len(problems)} problems in the DAG:"]
        lines += [f"- {p.message}" for p in problems[: cls.MAX_SHOWN]]
        if len(problems) > cls.MAX_SHOWN:
            lines.append(f"- ... and {len(problems) - cls.MAX_SHOWN} more")
        return "\n".join(lines)


class OutputReferenceError(GatewayError):
    """A `$OUTPUT[...]` reference names a path that its task's output does not have.

    `task` is the task whose arguments hold the reference; `reference` is the reference as far as it resolved.
    """

    def __init__(self, message: str, *, task: str, reference: str) -> None:
        super().__init__(message)
        self.task = task
        self.reference = reference


class AuthenticationError(GatewayError):
    """An HTTP request's API key does not authenticate.

    The message is the same whatever went wrong, so that it tells a caller nothing about which keys exist;
    `reason` says what it was, for the logs only: ``missing``, ``malformed``, ``unknown`` (no such prefix),
    ``mismatch`` (a known prefix, a wrong secret) or ``revoked``.
    """

    MESSAGE = "missing, malformed, unknown or revoked API key"

    def __init__(self, reason: str) -> None:
        super().__init__(self.MESSAGE)
        self.reason = reason


class DatabaseError(GatewayError):
    """Postgres cannot be reached, started or queried."""


class DatabaseUnavailableError(DatabaseError):
    """Postgres cannot serve now (unreachable, the connection lost, shutting down): the same call may pass once it
    is back. While a check finds it unreachable, calls fail at once with this error."""


class DatabaseInputError(DatabaseError):
    """Postgres refused a value that a request carried (a number out of range, a NUL character, a malformed
    value): the same request fails again, so the edge tells the caller to change it."""


class DataDirLockedError(DatabaseError):
    """Another gateway process owns the embedded Postgres data directory."""


class MigrationError(DatabaseError):
    """A migration failed; its transaction was rolled back."""


class EmbeddingError(GatewayError):
    """The embedding model cannot be loaded or run."""


class SecretError(GatewayError):
    """A stored secret cannot be opened: its master key is not in the keyring, or its data was altered or moved
    (the message never holds the secret)."""


class SignInError(GatewayError):
    """Signing in through the upstream identity provider (GitHub, an OpenID Connect issuer) failed or was refused;
    `error` is the OAuth error code to hand the client (``access_denied``, ``server_error``, ...)."""

    def __init__(self, message: str, *, error: str = "access_denied") -> None:
        super().__init__(message)
        self.error = error


class CodeError(GatewayError):
    """The client's code failed inside the sandbox: `kind` is the sandbox exception's type (``NameError``,
    ``SyntaxError``, ...), the message its text and line."""

    def __init__(self, message: str, *, kind: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.typing = ""
        """What the type checker found in the code before it ran (imported tool stubs), if anything."""


class CodeLimitError(CodeError):
    """The code was stopped by one of its limits, named in `limit` as the setting that sets it."""

    def __init__(self, message: str, *, limit: str) -> None:
        super().__init__(message, kind="LimitExceeded")
        self.limit = limit


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


class ResultTooLargeError(DownstreamError):
    """The server's answer was larger than its ``maxResultBytes``; it was read past, never held."""


class UnknownToolError(DownstreamError):
    """The server or tool is not known."""
