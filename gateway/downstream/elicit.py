"""A downstream server's ``elicitation/create`` requests, passed to the user through the call that caused them.

A server asks for input while it serves a tool call, but on stdio nothing in its request names that call. So
the gateway forwards a request only when exactly one call to that server is in flight, and only when that
call came from a client that can answer (it declared the elicitation capability and its request can carry a
server-to-client request back): then the question can only be this call's, and it goes to the client as part
of that request. Otherwise the server gets an error that says why, which a well-behaved server turns into its
own message; the gateway never guesses whose user to ask.

While the user answers, the call's timeout is suspended (a person typing is not a hung server), and it starts
afresh once the answer is back. A server that gives up on its call cancels its question too
(``notifications/cancelled``), which the SDK turns into the cancellation of the forwarding here.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anyio
import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway.ports import Ask

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Call:
    ask: Ask | None
    deadline: anyio.CancelScope
    timeout_s: float


class Elicitations:
    """The `elicitation_callback` of one server's client session, and the calls in flight that it routes to."""

    def __init__(self, server: str) -> None:
        self._server = server
        self._calls: dict[int, _Call] = {}
        self._next = 0

    @contextmanager
    def calling(self, ask: Ask | None, deadline: anyio.CancelScope, timeout_s: float) -> Iterator[None]:
        """Count a call as in flight; `deadline` is its timeout's scope, pushed back while its user answers."""
        key, self._next = self._next, self._next + 1
        self._calls[key] = _Call(ask, deadline, timeout_s)
        try:
            yield
        finally:
            del self._calls[key]

    async def __call__(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult | types.ErrorData:
        if len(self._calls) != 1:
            return self._refuse(f"{len(self._calls)} calls to it are in flight, so the gateway cannot tell "
                                "which call's user to ask" if self._calls else "no call to it is in flight")
        (call,) = self._calls.values()
        if call.ask is None:
            return self._refuse("the call in flight came from a workflow or from a client that cannot take a "
                                "question during a call (no elicitation capability, or a 2026 protocol session)")
        call.deadline.deadline = math.inf
        try:
            return await call.ask(params)
        except MCPError as exc:
            return exc.error
        except Exception as exc:  # the client is gone or answered nonsense: the server must still get an answer
            logger.warning("server %r asked for input and the client's answer could not be had: %r", self._server, exc)
            return types.ErrorData(code=types.INTERNAL_ERROR, message=f"the gateway's client did not answer: {exc}")
        finally:
            call.deadline.deadline = anyio.current_time() + call.timeout_s

    def _refuse(self, why: str) -> types.ErrorData:
        logger.info("server %r asked for input; not forwarded: %s", self._server, why)
        return types.ErrorData(code=types.INVALID_REQUEST, message=f"the gateway did not forward this question: {why}")
