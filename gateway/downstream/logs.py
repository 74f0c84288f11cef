"""A downstream server's MCP log messages (``notifications/message``), written to the gateway's log under its name.

Servers on the handshake protocol versions send every level (the spec leaves filtering to ``logging/setLevel``,
which the 2026-07-28 revision deprecates with the whole capability), so the filter is the gateway's own log
level: a server's debug chatter shows only when the gateway runs at DEBUG. The MCP severities fold onto
Python's (notice is INFO; critical, alert and emergency are CRITICAL), data that is not a string is written as
JSON, and one record is cut at `MAX_CHARS` so a server cannot fill the log with one message.
"""

from __future__ import annotations

import json
import logging

import mcp_types as types

from gateway.downstream.stderr import escaped
from gateway.secrets import redact

logger = logging.getLogger(__name__)

MAX_CHARS = 4000
"""The longest message text kept from one record; the rest is replaced by its length."""

LEVELS: dict[str, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": logging.INFO,
    "warning": logging.WARNING,
    "error": logging.ERROR,
    "critical": logging.CRITICAL,
    "alert": logging.CRITICAL,
    "emergency": logging.CRITICAL,
}


class ServerLog:
    """The `logging_callback` of one server's client session."""

    def __init__(self, server: str, secrets: frozenset[str] = frozenset()) -> None:
        self._server = server
        self._secrets = secrets

    async def __call__(self, params: types.LoggingMessageNotificationParams) -> None:
        level = LEVELS.get(params.level, logging.INFO)
        if not logger.isEnabledFor(level):
            return
        source = f"{self._server}/{params.logger}" if params.logger else self._server
        logger.log(level, "[%s] %s", source, escaped(redact(_text(params.data), self._secrets)))


def _text(data: object) -> str:
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False, default=str)
    if len(text) > MAX_CHARS:
        return f"{text[:MAX_CHARS]}... ({len(text)} characters in all)"
    return text
