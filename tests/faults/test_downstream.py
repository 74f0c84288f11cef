"""Downstream servers that write what no MCP server should: a bad byte on the wire, a result too large to hold."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import anyio
import pytest

from gateway.config import ServerSpec
from gateway.downstream import stdio
from gateway.errors import ResultTooLargeError, ServerCrashedError
from gateway.models import ServerState
from tests.downstream.support import supervising, text_of

pytestmark = pytest.mark.anyio

HOSTILE = str(Path(__file__).with_name("hostile_server.py"))


def hostile(name: str = "hostile", **options: object) -> ServerSpec:
    return ServerSpec(name=name, command=sys.executable, args=(HOSTILE,), **options)  # type: ignore[arg-type]


async def test_an_invalid_utf8_line_is_skipped_and_the_server_keeps_answering(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with supervising(hostile(call_timeout_s=5.0)) as (supervisor, recorder):
        await recorder.wait_for(lambda: ServerState.RUNNING in recorder.states("hostile"))
        assert text_of(await supervisor.call_tool("hostile", "garble", {})) == "garbled"
        for word in ("one", "two"):
            assert text_of(await supervisor.call_tool("hostile", "echo", {"text": word})) == word
        assert recorder.states("hostile") == ["starting", "running"]
    assert any("hostile" in r.getMessage() and "not valid UTF-8" in r.getMessage() for r in caplog.records)


async def test_a_bad_byte_inside_a_result_reaches_the_caller_replaced_not_as_a_dead_connection() -> None:
    async with supervising(hostile(call_timeout_s=5.0)) as (supervisor, recorder):
        await recorder.wait_for(lambda: ServerState.RUNNING in recorder.states("hostile"))
        line = b'{"jsonrpc":"2.0","method":"notifications/message","params":{"level":"info","data":"\xff"}}\n'
        assert text_of(await supervisor.call_tool("hostile", "garble", {"data_hex": line.hex()})) == "garbled"
        assert text_of(await supervisor.call_tool("hostile", "echo", {"text": "still here"})) == "still here"


async def test_a_result_over_the_limit_is_refused_naming_the_limit_and_the_server_goes_on() -> None:
    async with supervising(hostile(max_result_bytes=65536, call_timeout_s=10.0)) as (supervisor, recorder):
        await recorder.wait_for(lambda: ServerState.RUNNING in recorder.states("hostile"))
        assert len(text_of(await supervisor.call_tool("hostile", "big", {"size": 30_000}))) == 30_000
        with pytest.raises(ResultTooLargeError) as caught:
            await supervisor.call_tool("hostile", "big", {"size": 3_000_000})
        assert caught.value.server == "hostile"
        message = str(caught.value)
        assert re.fullmatch(
            r"server 'hostile' answered tools/call 'big' with 6,000,\d{3} bytes, over the limit of 65,536 bytes "
            r"\(maxResultBytes\)", message
        ), message  # the text twice: as content and as structured content
        assert text_of(await supervisor.call_tool("hostile", "echo", {"text": "after"})) == "after"
        assert recorder.states("hostile") == ["starting", "running"]


async def test_a_huge_result_does_not_hold_up_another_servers_calls() -> None:
    async with supervising(hostile(), hostile("other")) as (supervisor, recorder):
        await recorder.wait_for(lambda: recorder.states("other")[-1:] == [ServerState.RUNNING]
                                and recorder.states("hostile")[-1:] == [ServerState.RUNNING])
        slowest = 0.0

        async def echo_meanwhile() -> None:
            nonlocal slowest
            for _ in range(20):
                started = anyio.current_time()
                await supervisor.call_tool("other", "echo", {"text": "x"})
                slowest = max(slowest, anyio.current_time() - started)

        async with anyio.create_task_group() as tg:
            tg.start_soon(echo_meanwhile)
            with pytest.raises(ResultTooLargeError):
                await supervisor.call_tool("hostile", "big", {"size": 40_000_000})
        assert slowest < 3.0  # the bug held every call for the whole read (19-41 s at 20 MB)


async def test_a_reader_that_fails_unexpectedly_ends_the_connection_at_once_and_the_server_restarts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decode = stdio.decode_line

    def failing(line: bytes, server: str) -> str:  # a crash point inside the reader: a bug we do not know yet
        if line == b"boom":
            raise RuntimeError("an unexpected bug in the reader")
        return decode(line, server)

    monkeypatch.setattr(stdio, "decode_line", failing)
    async with supervising(hostile(call_timeout_s=20.0)) as (supervisor, recorder):
        await recorder.wait_for(lambda: ServerState.RUNNING in recorder.states("hostile"))
        began = anyio.current_time()
        with pytest.raises(ServerCrashedError):
            await supervisor.call_tool("hostile", "garble", {"data_hex": b"boom\n".hex()})
        assert anyio.current_time() - began < 10.0  # seen at once, not at the call's 20 s timeout
        await recorder.wait_for(lambda: recorder.states("hostile") == ["starting", "running", "restarting", "running"])
        assert text_of(await supervisor.call_tool("hostile", "echo", {"text": "back"})) == "back"
