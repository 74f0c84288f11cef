"""Questions from downstream servers, relayed to a 2026-07-28 client as ``input_required`` round trips.

On the 2026-07-28 protocol a server may not send a request back during a call: it answers the call with
``input_required`` (the questions, and an opaque ``requestState``), and the client calls again with the answers.
Downstream servers of the handshake versions still send ``elicitation/create`` in the middle of a call. So for
such a client the proxied call runs in the relay's own task group, where it outlives the client's request: its
first question ends the request as ``input_required`` (the question under `QUESTION_KEY`, a random token as
the state), and the client's call with the answer and the token hands the answer to the waiting server and
waits again, for the result or the next question.

Only the user whose call asked can answer (over HTTP, the user of the API key; on stdio there is one). A round
the client does not come back to within `round_ttl_s` (600 s unless told) is given up: the question gets an error
and its call goes on without anyone waiting for it. A client that cancels a round cancels the call.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway.ports import Ask
from gateway.server.principal import gateway_user

logger = logging.getLogger(__name__)

QUESTION_KEY = "question"
"""The key of the relayed question in ``inputRequests``, and of its answer in ``inputResponses``."""

ROUND_TTL_S = 600.0
"""How long a question waits for the client to call again with its answer."""

Start = Callable[[Ask | None], Awaitable[types.CallToolResult]]
"""Run the proxied call, sending the server's questions to the given `Ask` (None: nobody to ask)."""


@dataclass
class _Call:
    """One proxied call running in the relay, and what it has to tell (a question, its result, its failure)."""

    tool: str
    owner: str | None
    ttl_s: float = ROUND_TTL_S
    events: deque[tuple[str, Any]] = field(default_factory=deque)
    news: anyio.Event = field(default_factory=anyio.Event)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    answered: anyio.Event = field(default_factory=anyio.Event)
    answer: types.ElicitResult | None = None
    asking: bool = False

    async def run(self, start: Start) -> None:
        with self.scope:
            try:
                result = await start(self.ask)
            except Exception as exc:
                self._post("error", exc)
            else:
                self._post("result", result)

    async def ask(self, params: types.ElicitRequestParams) -> types.ElicitResult:
        if self.asking:  # a round carries one question; a server asking two at once gets the second refused
            raise MCPError(types.INVALID_REQUEST, "the gateway relays one question at a time; ask again later")
        self.asking, self.answered, self.answer = True, anyio.Event(), None
        try:
            self._post("question", params)
            await self.answered.wait()
        finally:
            self.asking = False
        if self.answer is None:  # given up (`Relay._expire`)
            raise TimeoutError(f"no answer within {self.ttl_s:g} s")
        return self.answer

    async def next(self) -> tuple[str, Any]:
        """What the call has to tell next: ("question", params), ("result", result) or ("error", exception)."""
        while not self.events:
            await self.news.wait()
            self.news = anyio.Event()
        return self.events.popleft()

    def _post(self, kind: str, value: Any) -> None:
        self.events.append((kind, value))
        self.news.set()

    def reply(self, answer: types.ElicitResult | None) -> None:
        """Hand the waiting question its answer; None gives it up."""
        self.answer = answer
        self.answered.set()


class Relay:
    """Proxied calls whose servers may ask questions, kept across a modern client's input-required round trips."""

    def __init__(self, *, round_ttl_s: float = ROUND_TTL_S) -> None:
        self._round_ttl_s = round_ttl_s
        self._tg: anyio.abc.TaskGroup | None = None
        self._waiting: dict[str, _Call] = {}

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Own the task group the relayed calls run in, until cancelled (which cancels them)."""
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._tg = None
            self._waiting.clear()

    @property
    def waiting(self) -> int:
        """Questions sent to clients and not answered yet."""
        return len(self._waiting)

    async def call(self, tool: str, start: Start) -> types.CallToolResult | types.InputRequiredResult:
        """Run a call: its result, or its first question as ``input_required``. Without the relay running
        (nothing started it), the call runs here and its questions are not relayed."""
        if self._tg is None:
            return await start(None)
        call = _Call(tool, gateway_user(), self._round_ttl_s)
        self._tg.start_soon(call.run, start)
        return await self._next(call)

    async def resume(self, tool: str, state: str, responses: dict[str, Any] | None
                     ) -> types.CallToolResult | types.InputRequiredResult:
        """The client's call again with the answer to the question `state` stands for."""
        call = self._waiting.get(state)
        if call is None or call.tool != tool or call.owner != gateway_user():
            raise MCPError(types.INVALID_PARAMS, f"requestState does not name a question of {tool!r} waiting "
                           "for an answer (unknown, already answered or expired): call the tool again")
        answer = (responses or {}).get(QUESTION_KEY)
        if not isinstance(answer, types.ElicitResult):
            raise MCPError(types.INVALID_PARAMS, f"inputResponses.{QUESTION_KEY}: expected the answer to the "
                           f"question asked (an elicitation result), got {type(answer).__name__}")
        del self._waiting[state]
        call.reply(answer)
        return await self._next(call)

    async def _next(self, call: _Call) -> types.CallToolResult | types.InputRequiredResult:
        try:
            kind, value = await call.next()
        except BaseException:  # the client gave up on this round: nobody will answer, so the call stops
            call.scope.cancel()
            raise
        if kind == "result":
            return value  # type: ignore[no-any-return]
        if kind == "error":
            raise value
        state = secrets.token_urlsafe(24)
        self._waiting[state] = call
        assert self._tg is not None
        self._tg.start_soon(self._expire, state, call, call.answered)
        return types.InputRequiredResult(input_requests={QUESTION_KEY: types.ElicitRequest(params=value)},
                                         request_state=state)

    async def _expire(self, state: str, call: _Call, answered: anyio.Event) -> None:
        """The one timer of a question: past the round's time unanswered, it is forgotten and the server told."""
        with anyio.move_on_after(self._round_ttl_s):
            await answered.wait()
            return
        if self._waiting.pop(state, None) is not None:
            logger.info("a question from a call to %r was not answered within %g s; given up",
                        call.tool, self._round_ttl_s)
            call.reply(None)
