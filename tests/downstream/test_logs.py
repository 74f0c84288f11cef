"""A downstream server's MCP log messages land in the gateway's log under the server's name, at its level."""

from __future__ import annotations

import logging

import mcp_types as types
import pytest

from gateway.downstream.logs import MAX_CHARS, ServerLog
from tests.eventually import eventually

from .support import SETTLE_S, faulty, supervising, text_of

pytestmark = pytest.mark.anyio

LOGGER = "gateway.downstream.logs"


def _records(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == LOGGER]


async def test_a_servers_log_messages_are_written_under_its_name_at_their_level(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    async with supervising(faulty()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        for level, data in (("debug", "too quiet"), ("warning", "disk almost full"), ("error", "lost the lock")):
            assert text_of(await supervisor.call_tool("faulty", "log", {"level": level, "data": data})) == (
                f"logged at {level}")
        # the notices travel beside the results: give them up to 10 s
        await eventually(lambda: len(_records(caplog)) >= 2, timeout_s=10, interval_s=0.02, what="two notices logged")
    assert _records(caplog) == [
        (logging.WARNING, "[faulty/faulty.tools] disk almost full"),
        (logging.ERROR, "[faulty/faulty.tools] lost the lock"),
    ]


async def test_levels_fold_onto_pythons_and_debug_shows_only_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    log = ServerLog("git")
    caplog.set_level(logging.INFO, logger=LOGGER)
    for level in ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"):
        await log(types.LoggingMessageNotificationParams(level=level, data=level))
    caplog.set_level(logging.DEBUG, logger=LOGGER)
    await log(types.LoggingMessageNotificationParams(level="debug", data="now shown"))
    assert _records(caplog) == [
        (logging.INFO, "[git] info"),
        (logging.INFO, "[git] notice"),
        (logging.WARNING, "[git] warning"),
        (logging.ERROR, "[git] error"),
        (logging.CRITICAL, "[git] critical"),
        (logging.CRITICAL, "[git] alert"),
        (logging.CRITICAL, "[git] emergency"),
        (logging.DEBUG, "[git] now shown"),
    ]


async def test_structured_data_is_written_as_json_and_a_huge_message_is_cut(caplog: pytest.LogCaptureFixture) -> None:
    log = ServerLog("db")
    caplog.set_level(logging.INFO, logger=LOGGER)
    await log(types.LoggingMessageNotificationParams(level="info", logger="pool", data={"open": 3, "idle": "né"}))
    await log(types.LoggingMessageNotificationParams(level="info", data="x" * (MAX_CHARS + 10)))
    first, second = _records(caplog)
    assert first == (logging.INFO, '[db/pool] {"open": 3, "idle": "né"}')
    assert second[1] == f"[db] {'x' * MAX_CHARS}... ({MAX_CHARS + 10} characters in all)"
