"""Tools are listed from every server, across pages, and again when a server says its list changed."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from gateway.models import ServerState

from .support import SETTLE_S, faulty, notes, paged, supervising, text_of, time_server

pytestmark = pytest.mark.anyio


async def test_tools_are_listed_from_several_servers_and_handed_to_on_tools(tmp_path: Path) -> None:
    async with supervising(faulty(), notes(tmp_path / "notes.json"), time_server()) as (supervisor, recorder):
        await supervisor.wait_settled(SETTLE_S)
        assert {s.name: s.state for s in supervisor.statuses()} == dict.fromkeys(
            ("faulty", "notes", "time"), ServerState.RUNNING
        )
        assert "get_current_time" in recorder.tool_names("time")
        assert set(recorder.tool_names("notes")) == {"write_note", "read_note", "list_notes", "delete_note"}
        assert {"echo", "crash", "hang", "count_calls"} <= set(recorder.tool_names("faulty"))
        assert [t.name for t in supervisor.tools("time")] == recorder.tool_names("time")


async def test_listed_tools_carry_plain_dict_schemas_and_annotations(tmp_path: Path) -> None:
    async with supervising(faulty(), notes(tmp_path / "notes.json")) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        by_name = {tool.name: tool for tool in supervisor.tools("notes") + supervisor.tools("faulty")}
    delete = by_name["delete_note"]
    assert delete.tool_id == "notes:delete_note"
    assert delete.annotations is not None and delete.annotations["destructiveHint"] is True
    assert by_name["read_note"].annotations == {"readOnlyHint": True}
    assert delete.input_schema["required"] == ["title"]
    assert "for good" in delete.description
    add = by_name["add"]
    assert add.output_schema is not None and add.output_schema["properties"]["result"]["type"] == "number"


async def test_every_page_of_a_paginated_listing_is_followed() -> None:
    async with supervising(paged()) as (supervisor, recorder):
        await supervisor.wait_settled(SETTLE_S)
        assert recorder.tool_names("paged") == [f"tool_{i:02d}" for i in range(25)]
        result = await supervisor.call_tool("paged", "tool_24", {})
        assert text_of(result) == "tool_24"
        assert supervisor.statuses()[0].tool_count == 25


async def test_a_list_changed_notification_makes_the_supervisor_list_the_new_tool() -> None:
    async with supervising(faulty()) as (supervisor, recorder):
        await supervisor.wait_settled(SETTLE_S)
        assert "shiny" not in recorder.tool_names("faulty")
        added = await supervisor.call_tool("faulty", "add_tool", {"name": "shiny"})
        assert text_of(added) == "added shiny"
        await recorder.wait_for(lambda: "shiny" in recorder.tool_names("faulty"))
        assert recorder.listings == ["faulty", "faulty"]
        assert "shiny" in [tool.name for tool in supervisor.tools("faulty")]
        assert text_of(await supervisor.call_tool("faulty", "shiny", {})) == "shiny"


async def test_the_supervisor_reports_started_before_any_server_has_connected() -> None:
    async with supervising(faulty(), time_server()) as (supervisor, recorder):
        assert [s.state for s in supervisor.statuses()] == [ServerState.STARTING, ServerState.STARTING]
        assert recorder.tools == {}
        with anyio.fail_after(SETTLE_S):
            await supervisor.wait_settled(SETTLE_S)
        assert [s.state for s in supervisor.statuses()] == [ServerState.RUNNING, ServerState.RUNNING]
