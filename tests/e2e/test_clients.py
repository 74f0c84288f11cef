"""The gateway through a client that shows the model only what `tools/list` returned (as Claude's clients do):
it finds, calls and chains tools with nothing but the gateway's own texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.e2e.strict import NotListed, StrictClient, strict_client
from tests.e2e.support import servers_file, text_of
from tests.e2e.test_gateway import indexed, run_cli  # noqa: F401 - the fixture
from tests.e2e.test_http import base_url, http_gateway, mcp_client, new_key

pytestmark = pytest.mark.anyio

META_TOOLS = [
    "search_tools", "call_tool", "execute_dag", "workflow", "execute_code", "cap_list", "cap_rename", "cap_merge",
]


async def find(client: StrictClient, query: str, tool_id: str) -> str:
    """Search as a model would and check that `tool_id` is the first hit; the search's text."""
    hits, text = await client.search(query)
    assert hits and hits[0] == tool_id, text
    return text


async def test_the_gateways_own_texts_say_how_to_find_call_and_chain(indexed: Path, database_url: str) -> None:  # noqa: F811
    async with strict_client(indexed, "--database-url", database_url) as client:
        instructions = client.client.instructions or ""
        described = {name: tool.description or "" for name, tool in client.tools.items()}
    assert list(described) == META_TOOLS
    assert all(name in instructions for name in ("search_tools", "call_tool", "execute_dag", "$OUTPUT["))
    assert "call_tool" in described["search_tools"] and "tool_id" in described["call_tool"]


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_a_found_tool_is_called_through_call_tool_by_the_id_the_search_text_gave(
    indexed: Path, database_url: str, mode: str  # noqa: F811
) -> None:
    async with strict_client(indexed, "--database-url", database_url, mode=mode) as client:
        text = await find(client, "what time is it in Tokyo", "time:get_current_time")
        result = await client.call("call_tool", {"tool": "time:get_current_time",
                                                 "arguments": {"timezone": "Asia/Tokyo"}})
    assert "timezone (string, required)" in text and 'call_tool {"tool": "<tool_id>"' in text
    assert not result.is_error, text_of(result)
    assert json.loads(text_of(result))["timezone"] == "Asia/Tokyo"


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_found_tools_join_the_clients_list_with_their_schemas_and_are_called_by_name(
    indexed: Path, database_url: str, mode: str  # noqa: F811
) -> None:
    async with strict_client(indexed, "--database-url", database_url, mode=mode) as client:
        with pytest.raises(NotListed):
            await client.call("time__get_current_time", {"timezone": "UTC"})
        await find(client, "what time is it in Tokyo", "time:get_current_time")
        listed = await client.relist_when_told()
        result = await client.call("time__get_current_time", {"timezone": "Asia/Tokyo"})
    tool = listed["time__get_current_time"]
    assert list(listed)[: len(META_TOOLS)] == META_TOOLS
    assert tool.input_schema["required"] == ["timezone"] and tool.description.startswith("[time] ")
    assert not result.is_error and json.loads(text_of(result))["timezone"] == "Asia/Tokyo"


async def test_a_strict_client_chains_found_tools_in_one_workflow(indexed: Path, database_url: str) -> None:  # noqa: F811
    async with strict_client(indexed, "--database-url", database_url) as client:
        await find(client, "save a note about the meeting", "notes:write_note")
        await find(client, "what time is it in Tokyo", "time:get_current_time")
        done = await client.call("execute_dag", {"intent": "note down the time in Tokyo", "tasks": [
            {"id": "now", "tool": "time:get_current_time", "arguments": {"timezone": "Asia/Tokyo"}},
            {"id": "save", "tool": "notes:write_note",
             "arguments": {"title": "tokyo", "text": "it is $OUTPUT[now].datetime"}},
        ]})
        read = await client.call("call_tool", {"tool": "notes:read_note", "arguments": {"title": "tokyo"}})
    assert not done.is_error, text_of(done)
    assert (done.structured_content or {})["status"] == "completed"
    assert "it is 20" in text_of(read)  # the datetime the first task returned, e.g. 2026-12-05T03:24:35+09:00


async def test_call_tool_names_the_argument_that_does_not_fit_and_the_closest_tools_to_a_wrong_name(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    async with strict_client(indexed, "--database-url", database_url) as client:
        wrong_type = await client.call("call_tool", {"tool": "faulty:add", "arguments": {"a": "2", "b": 3}})
        missing = await client.call("call_tool", {"tool": "faulty__add", "arguments": {"a": 2}})
        unknown = await client.call("call_tool", {"tool": "time:get_curent_time", "arguments": {}})
        added = await client.call("call_tool", {"tool": "faulty__add", "arguments": {"a": 2, "b": 3}})
    assert wrong_type.is_error and "argument 'a': '2' is not of type 'number'" in text_of(wrong_type)
    assert missing.is_error and "missing required argument 'b'" in text_of(missing)
    assert unknown.is_error and text_of(unknown).startswith("call_tool: unknown tool 'time:get_curent_time'")
    assert "time:get_current_time" in text_of(unknown)
    assert not added.is_error and float(text_of(added)) == 5.0


async def test_in_search_mode_nothing_joins_the_list_and_call_tool_still_reaches_every_tool(
    tmp_path: Path, database_url: str
) -> None:
    config = servers_file(tmp_path, expose="search")
    assert run_cli("index", "--config", str(config), "--database-url", database_url).returncode == 0
    async with strict_client(config, "--database-url", database_url) as client:
        text = await find(client, "what time is it in Tokyo", "time:get_current_time")
        result = await client.call("call_tool", {"tool": "time:get_current_time", "arguments": {"timezone": "UTC"}})
        listed = await client.list_tools()
    assert list(listed) == META_TOOLS and client.notified == 0
    assert "tool list" not in text
    assert not result.is_error


async def test_over_http_each_session_lists_only_the_tools_it_found(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    alice, bob = new_key(database_url, "alice"), new_key(database_url, "bob")
    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, alice, mode="legacy") as first, mcp_client(base, alice, mode="legacy") as second:
            await first.call_tool("search_tools", {"query": "what time is it in Tokyo"})
            first_listed = {t.name for t in (await first.list_tools()).tools}
            second_listed = {t.name for t in (await second.list_tools()).tools}
        async with mcp_client(base, bob) as modern:  # a 2026 client: its user's found tools
            bob_before = {t.name for t in (await modern.list_tools()).tools}
            await modern.call_tool("search_tools", {"query": "save a note"})
            bob_after = {t.name for t in (await modern.list_tools()).tools}
    assert "time__get_current_time" in first_listed
    assert second_listed == bob_before == {*META_TOOLS, "my_servers"}  # an HTTP user's own servers too
    assert "notes__write_note" in bob_after and "time__get_current_time" not in bob_after
