"""Tool calls reach the live downstream session and come back as its results, or as one clear error."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import anyio
import pytest

from gateway.downstream import Supervisor
from gateway.errors import CallTimeoutError, ServerUnavailableError, UnknownToolError
from tests.eventually import eventually

from .support import SETTLE_S, faulty, notes, supervising, text_of, time_server

pytestmark = pytest.mark.anyio


async def test_a_tool_call_returns_the_downstream_result(tmp_path: Path) -> None:
    async with supervising(faulty(), notes(tmp_path / "notes.json"), time_server()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        now = await supervisor.call_tool("time", "get_current_time", {"timezone": "UTC"})
        assert json.loads(text_of(now))["timezone"] == "UTC"
        total = await supervisor.call_tool("faulty", "add", {"a": 2, "b": 3.5})
        assert total.structured_content == {"result": 5.5}
        await supervisor.call_tool("notes", "write_note", {"title": "todo", "text": "buy milk"})
        assert text_of(await supervisor.call_tool("notes", "read_note", {"title": "todo"})) == "buy milk"
    assert json.loads((tmp_path / "notes.json").read_text()) == {"todo": "buy milk"}


async def test_a_downstream_error_result_is_returned_as_is(tmp_path: Path) -> None:
    async with supervising(notes(tmp_path / "notes.json")) as (supervisor, _):
        result = await supervisor.call_tool("notes", "read_note", {"title": "missing"}, timeout_s=SETTLE_S)
    assert result.is_error is True
    assert "no note titled 'missing'" in text_of(result)


async def test_a_call_made_while_the_server_starts_waits_for_it() -> None:
    async with supervising(faulty()) as (supervisor, _):
        result = await supervisor.call_tool("faulty", "echo", {"text": "early"}, timeout_s=SETTLE_S)
        assert text_of(result) == "early"


async def test_a_hanging_tool_times_out_quickly_and_the_server_stays_usable() -> None:
    async with supervising(faulty()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        started = anyio.current_time()
        with pytest.raises(CallTimeoutError) as caught:
            await supervisor.call_tool("faulty", "hang", {}, timeout_s=0.3)
        assert anyio.current_time() - started < 2.0
        assert caught.value.server == "faulty"
        assert str(caught.value) == "server 'faulty' did not answer tools/call 'hang' within 0.3 s"
        assert text_of(await supervisor.call_tool("faulty", "echo", {"text": "still here"})) == "still here"
        assert text_of(await supervisor.call_tool("faulty", "count_calls", {})) == "3"
        assert supervisor.statuses()[0].restarts == 0


async def test_a_timed_out_call_is_cancelled_at_the_server_too() -> None:
    async with supervising(faulty()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        with pytest.raises(CallTimeoutError):
            await supervisor.call_tool("faulty", "hang", {}, timeout_s=0.3)
        assert await cancelled_count(supervisor) == 1


async def cancelled_count(supervisor: Supervisor, *, at_least: int = 1) -> int:
    """faulty's count of cancelled `hang` calls, once it reaches `at_least` (the notice travels on its own)."""
    count = 0

    async def reached() -> bool:
        nonlocal count
        count = int(text_of(await supervisor.call_tool("faulty", "count_cancelled", {})))
        return count >= at_least

    await eventually(reached, timeout_s=5, interval_s=0.02, what=f"{at_least} cancelled hang calls")
    return count


async def test_a_servers_progress_reaches_the_caller_who_asked_for_it_and_no_one_else() -> None:
    reports: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        reports.append((done, total, message))

    async with supervising(faulty()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        result = await supervisor.call_tool("faulty", "steps", {"count": 3, "ms": 10}, progress=progress)
        assert text_of(result) == "3 steps done"
        assert reports == [(1, 3, "step 1 of 3"), (2, 3, "step 2 of 3"), (3, 3, "step 3 of 3")]
        assert text_of(await supervisor.call_tool("faulty", "steps", {"count": 2, "ms": 10})) == "2 steps done"
        assert len(reports) == 3


async def test_fifty_concurrent_callers_each_get_their_own_answer() -> None:
    answers: dict[int, str] = {}
    async with supervising(faulty()) as (supervisor, _):

        async def ask(i: int) -> None:
            answers[i] = text_of(await supervisor.call_tool("faulty", "echo", {"text": f"caller {i}"}))

        await supervisor.wait_settled(SETTLE_S)
        with anyio.fail_after(SETTLE_S):
            async with anyio.create_task_group() as tg:
                for i in range(50):
                    tg.start_soon(ask, i)
    assert answers == {i: f"caller {i}" for i in range(50)}


async def test_an_unknown_server_is_an_unknown_tool_error() -> None:
    async with supervising(faulty()) as (supervisor, _):
        with pytest.raises(UnknownToolError, match="no downstream server is called 'nope'") as caught:
            await supervisor.call_tool("nope", "echo", {})
        assert caught.value.server == "nope"
        with pytest.raises(UnknownToolError):
            supervisor.tools("nope")


async def test_a_disabled_server_is_never_started_and_refuses_calls() -> None:
    disabled = replace(faulty("off"), disabled=True)
    async with supervising(disabled, faulty()) as (supervisor, recorder):
        await supervisor.wait_settled(SETTLE_S)
        off = supervisor.statuses()[0]
        assert (off.state, off.pid) == ("disabled", None)
        assert recorder.states("off") == ["disabled"]
        with pytest.raises(ServerUnavailableError, match="'off' is disabled"):
            await supervisor.call_tool("off", "echo", {"text": "x"})
