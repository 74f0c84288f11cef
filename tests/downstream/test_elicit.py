"""A downstream server's questions to the user go to the one call in flight that can answer them, or are refused."""

from __future__ import annotations

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from .support import SETTLE_S, faulty, supervising, text_of

pytestmark = pytest.mark.anyio

NO_ONE_TO_ASK = ("the call in flight came from a workflow or from a client that cannot take a question during a call "
                 "(no elicitation capability, or a 2026 protocol session)")


class User:
    """An `Ask` that answers after `delay_s`, remembering the questions."""

    def __init__(self, answer: str = "blue", delay_s: float = 0.0) -> None:
        self.questions: list[str] = []
        self._answer, self._delay_s = answer, delay_s

    async def __call__(self, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.questions.append(params.message)
        await anyio.sleep(self._delay_s)
        return types.ElicitResult(action="accept", content={"answer": self._answer})


async def test_the_only_call_in_flight_gets_the_question_and_its_timeout_waits_for_the_answer() -> None:
    user = User(delay_s=1.0)
    async with supervising(faulty()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        result = await supervisor.call_tool("faulty", "ask", {"question": "Which colour?"}, timeout_s=0.5, ask=user)
        declined = await supervisor.call_tool("faulty", "ask", {"question": "Sure?"}, ask=decline)
    assert user.questions == ["Which colour?"]
    assert text_of(result) == "answer: blue"
    assert text_of(declined) == "decline"


async def decline(params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="decline")


async def test_a_call_without_anyone_to_ask_gets_a_refusal_that_says_why() -> None:
    async with supervising(faulty()) as (supervisor, _):
        result = await supervisor.call_tool("faulty", "ask", {"question": "Which colour?"}, timeout_s=SETTLE_S)
    assert text_of(result) == f"not asked: the gateway did not forward this question: {NO_ONE_TO_ASK}"


async def test_with_two_calls_in_flight_nobody_is_asked() -> None:
    user, working = User(), anyio.Event()

    async def progress(progress: float, total: float | None, message: str | None) -> None:
        working.set()

    async with supervising(faulty()) as (supervisor, _), anyio.create_task_group() as tg:
        await supervisor.wait_settled(SETTLE_S)
        tg.start_soon(lambda: supervisor.call_tool("faulty", "steps", {"count": 100, "ms": 30}, progress=progress))
        await working.wait()  # its first step is done: the call is in flight
        result = await supervisor.call_tool("faulty", "ask", {"question": "Which colour?"}, ask=user)
        tg.cancel_scope.cancel()
    assert user.questions == []
    assert text_of(result) == ("not asked: the gateway did not forward this question: 2 calls to it are in flight, "
                               "so the gateway cannot tell which call's user to ask")


async def test_the_clients_error_goes_back_to_the_server_as_is() -> None:
    async def refusing(params: types.ElicitRequestParams) -> types.ElicitResult:
        raise MCPError(types.INVALID_PARAMS, "this client only takes forms with an email")

    async def gone(params: types.ElicitRequestParams) -> types.ElicitResult:
        raise anyio.BrokenResourceError

    async with supervising(faulty()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        refused = await supervisor.call_tool("faulty", "ask", {"question": "Which colour?"}, ask=refusing)
        lost = await supervisor.call_tool("faulty", "ask", {"question": "Which colour?"}, ask=gone)
        after = await supervisor.call_tool("faulty", "echo", {"text": "still here"})
    assert text_of(refused) == "not asked: this client only takes forms with an email"
    assert text_of(lost).startswith("not asked: the gateway's client did not answer")
    assert text_of(after) == "still here"
