"""The relay keeps a proxied call (to the real faulty server) running across a client's input-required rounds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager

import anyio
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway.downstream import Supervisor
from gateway.ports import Ask
from gateway.server import questions
from gateway.server.questions import QUESTION_KEY, Relay, Start
from tests.downstream.support import SETTLE_S, faulty, supervising, text_of
from tests.downstream.test_calls import cancelled_count
from tests.eventually import eventually

pytestmark = pytest.mark.anyio


@asynccontextmanager
async def relaying(**options: float) -> AsyncIterator[tuple[Relay, Supervisor]]:
    async with supervising(faulty()) as (supervisor, _), anyio.create_task_group() as tg:
        relay = Relay(**options)
        await tg.start(relay.run)
        await supervisor.wait_settled(SETTLE_S)
        yield relay, supervisor
        tg.cancel_scope.cancel()


def calling(supervisor: Supervisor, tool: str, arguments: dict[str, object]) -> Start:
    def start(ask: Ask | None) -> object:
        return supervisor.call_tool("faulty", tool, arguments, ask=ask)
    return start  # type: ignore[return-value]


async def test_a_question_becomes_input_required_and_the_answer_finishes_the_call() -> None:
    async with relaying() as (relay, supervisor):
        first = await relay.call("faulty__ask", calling(supervisor, "ask", {"question": "Which colour?"}))
        assert isinstance(first, types.InputRequiredResult) and first.request_state is not None
        assert first.input_requests is not None
        assert first.input_requests[QUESTION_KEY].params.message == "Which colour?"  # type: ignore[union-attr]
        assert relay.waiting == 1
        answer = types.ElicitResult(action="accept", content={"answer": "blue"})
        done = await relay.resume("faulty__ask", first.request_state, {QUESTION_KEY: answer})
        assert relay.waiting == 0
        with pytest.raises(MCPError, match="already answered"):  # a state answers once
            await relay.resume("faulty__ask", first.request_state, {QUESTION_KEY: answer})
    assert isinstance(done, types.CallToolResult) and text_of(done) == "answer: blue"


async def test_a_call_without_questions_returns_its_result_and_a_wrong_answer_is_refused_by_field() -> None:
    async with relaying() as (relay, supervisor):
        plain = await relay.call("faulty__echo", calling(supervisor, "echo", {"text": "hi"}))
        first = await relay.call("faulty__ask", calling(supervisor, "ask", {"question": "Which colour?"}))
        assert isinstance(first, types.InputRequiredResult) and first.request_state is not None
        with pytest.raises(MCPError, match="of 'faulty__echo'"):  # another tool's call cannot answer it
            await relay.resume("faulty__echo", first.request_state, {})
        with pytest.raises(MCPError) as wrong:
            await relay.resume("faulty__ask", first.request_state, {QUESTION_KEY: types.ListRootsResult(roots=[])})
        assert relay.waiting == 1  # still waiting for a proper answer
    assert text_of(plain) == "hi"
    assert str(wrong.value) == ("inputResponses.question: expected the answer to the question asked "
                                "(an elicitation result), got ListRootsResult")


async def test_a_client_that_cancels_a_round_cancels_the_call() -> None:
    async with relaying() as (relay, supervisor):
        with anyio.move_on_after(0.5):
            await relay.call("faulty__hang", calling(supervisor, "hang", {}))
        assert await cancelled_count(supervisor) == 1


async def test_a_question_nobody_answers_in_time_is_given_up() -> None:
    async with relaying(round_ttl_s=0.3) as (relay, supervisor):
        first = await relay.call("faulty__ask", calling(supervisor, "ask", {"question": "Which colour?"}))
        assert isinstance(first, types.InputRequiredResult) and first.request_state is not None
        assert relay.waiting == 1
        await eventually(lambda: relay.waiting == 0, what="the unanswered question given up")
        with pytest.raises(MCPError, match="expired"):
            await relay.resume("faulty__ask", first.request_state, {})
        assert text_of(await supervisor.call_tool("faulty", "echo", {"text": "still here"})) == "still here"


async def test_without_the_relay_running_the_call_runs_and_nobody_is_asked() -> None:
    async with supervising(faulty()) as (supervisor, _):
        result = await Relay().call("faulty__ask", calling(supervisor, "ask", {"question": "Which colour?"}))
    assert isinstance(result, types.CallToolResult)
    assert text_of(result).startswith("not asked: the gateway did not forward this question: the call in flight")


async def test_a_second_question_while_one_waits_is_refused_and_the_first_still_gets_its_answer() -> None:
    call = questions._Call("faulty__ask", None)
    answers: list[types.ElicitResult] = []
    schema: dict[str, object] = {"type": "object", "properties": {}}
    first = types.ElicitRequestFormParams(message="Which colour?", requested_schema=schema)
    async with anyio.create_task_group() as tg:
        tg.start_soon(lambda: _keep(answers, call.ask(first)))
        assert await call.next() == ("question", first)
        with pytest.raises(MCPError, match="one question at a time"):
            await call.ask(first)
        call.reply(types.ElicitResult(action="decline"))
    assert answers == [types.ElicitResult(action="decline")]


async def _keep(into: list[types.ElicitResult], asking: Awaitable[types.ElicitResult]) -> None:
    into.append(await asking)
