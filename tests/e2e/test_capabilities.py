"""Capabilities learned from workflows, listed, renamed and merged through the MCP surface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.e2e.support import gateway_client, text_of
from tests.e2e.test_gateway import indexed  # noqa: F401 - the fixture
from tests.e2e.test_workflows import echo, run_dag
from tests.eventually import eventually

pytestmark = pytest.mark.anyio


async def test_a_workflow_run_twice_with_other_literals_is_one_capability_used_twice(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        for text in ("one", "two"):
            done = await run_dag(client, [echo("a", text), echo("b", "$OUTPUT[a].result!", "a")])
            assert done["status"] == "completed"
        listed = await _until_usage(client, 2)
    (capability,) = listed["capabilities"]
    assert capability["name"] == "faulty:echo_2_times" and capability["usage_count"] == 2  # no intent: its tools
    assert capability["tools"] == ["faulty:echo"]
    assert set(capability["parameters_schema"]["properties"]) == {"p_t1_text"}


async def test_rename_keeps_the_old_name_resolving_and_merge_sums_counts(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    chain = [echo("a", "x"), echo("b", "$OUTPUT[a].result", "a")]
    fan = [echo("a", "x"), echo("b", "y"), echo("c", "$OUTPUT[a].result $OUTPUT[b].result", "a", "b")]
    other = [echo("a", "x"), {"id": "b", "tool": "faulty:add", "arguments": {"a": 1, "b": 2}, "depends_on": ["a"]}]
    async with gateway_client(indexed, "--database-url", database_url) as client:
        for dag in (chain, fan, other):
            assert (await run_dag(client, dag))["status"] == "completed"
        await _until_total(client, 3)
        names = {frozenset(c["tools"]) | {len(c["parameters_schema"]["properties"])}: c["name"]
                 for c in (await client.call_tool("cap_list", {})).structured_content["capabilities"]}
        chain_name, fan_name = names[frozenset({"faulty:echo", 1})], names[frozenset({"faulty:echo", 2})]
        other_name = names[frozenset({"faulty:echo", "faulty:add", 3})]
        renamed = await client.call_tool("cap_rename", {"name": chain_name, "namespace": "demo", "action": "relay"})
        bad = await client.call_tool("cap_rename", {"name": "demo:relay", "action": "exec_nope"})
        refused = await client.call_tool("cap_merge", {"source": other_name, "target": "demo:relay"})
        merged = await client.call_tool("cap_merge", {"source": fan_name, "target": chain_name})
        after = (await client.call_tool("cap_list", {"pattern": "demo:*"})).structured_content
        total = (await client.call_tool("cap_list", {})).structured_content["total"]
    assert not renamed.is_error and renamed.structured_content["name"] == "demo:relay"
    assert bad.is_error and "action" in text_of(bad)
    assert refused.is_error and "different tools" in text_of(refused)
    assert not merged.is_error, text_of(merged)
    assert merged.structured_content["name"] == "demo:relay" and merged.structured_content["usage_count"] == 2
    assert after["total"] == 1 and total == 2


async def _until_usage(client: Client, usage: int) -> dict[str, Any]:
    async def used() -> dict[str, Any] | None:
        listed: dict[str, Any] = (await client.call_tool("cap_list", {})).structured_content
        return listed if listed["total"] and listed["capabilities"][0]["usage_count"] >= usage else None

    # learning runs after each workflow, in the background: slow on a loaded machine
    listed: dict[str, Any] = await eventually(used, timeout_s=60, interval_s=0.1,
                                              what=f"the first capability used {usage} times")
    return listed


async def _until_total(client: Client, total: int) -> dict[str, Any]:
    """cap_list's answer, once it lists at least `total` capabilities (learned in the background)."""

    async def enough() -> dict[str, Any] | None:
        listed: dict[str, Any] = (await client.call_tool("cap_list", {})).structured_content
        return listed if listed["total"] >= total else None

    listed: dict[str, Any] = await eventually(enough, timeout_s=20, interval_s=0.1, what=f"{total} capabilities listed")
    return listed


async def test_a_learned_capability_is_found_suggested_and_called_with_new_arguments(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    intent = "shout a word twice"
    async with gateway_client(indexed, "--database-url", database_url) as client:
        learned = await run_dag(client, [echo("a", "one"), echo("b", "$OUTPUT[a].result!", "a")], intent=intent)
        assert learned["status"] == "completed"
        name = (await _until_usage(client, 1))["capabilities"][0]["name"]
        found = (await client.call_tool("search_tools", {"query": intent})).structured_content
        suggested = (await client.call_tool("execute_dag", {"intent": intent})).structured_content
        called = await run_dag(client, [{"id": "x", "tool": name, "arguments": {"p_t1_text": "fresh"}}])
        wrong = await client.call_tool("execute_dag", {"tasks": [{"id": "x", "tool": name, "arguments": {"nope": 1}}]})
        listed = await _until_usage(client, 2)
    capability = next(r for r in found["results"] if r["kind"] == "capability")
    assert capability["call_as"] == name and capability["tools"] == ["faulty:echo"]
    assert capability["semantic"] > 0.99 and {r["kind"] for r in found["results"]} == {"tool", "capability"}
    assert suggested["capability"]["name"] == name
    assert suggested["suggested_dag"]["tasks"][0] | {"input_schema": None} == {
        "id": "t1", "tool": name, "depends_on": [], "arguments": {"p_t1_text": "one"}, "input_schema": None}
    assert called["status"] == "completed" and called["tasks"]["x"]["output"] == {"result": "fresh!"}
    assert wrong.is_error and "nope" in text_of(wrong)
    assert listed["capabilities"][0]["usage_count"] == 2


async def _single(client: Client, tool: str, arguments: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return await run_dag(client, [{"id": "x", "tool": tool, "arguments": arguments}], **extra)


async def _approved(client: Client, tasks: list[dict[str, Any]]) -> dict[str, Any]:
    paused = await run_dag(client, tasks)
    assert paused["status"] == "approval_required", paused
    done = await client.call_tool("workflow", {"workflow_id": paused["workflow_id"], "action": "continue",
                                               "approved": True})
    assert done.structured_content is not None
    return done.structured_content


async def test_a_read_only_capability_answers_from_cache_and_a_destructive_one_always_runs(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    write = {"id": "w", "tool": "notes:write_note", "arguments": {"title": "t", "text": "x"}}
    delete = {"id": "d", "tool": "notes:delete_note", "arguments": {"title": "t"}, "depends_on": ["w"]}
    async with gateway_client(indexed, "--database-url", database_url) as client:
        assert (await run_dag(client, [echo("a", "x"), echo("b", "$OUTPUT[a].result", "a")]))["status"] == "completed"
        assert (await _approved(client, [write, delete]))["status"] == "completed"
        await _until_total(client, 2)
        names = {frozenset(c["tools"]): c["name"]
                 for c in (await client.call_tool("cap_list", {})).structured_content["capabilities"]}
        echo_name, notes_name = names[frozenset({"faulty:echo"})], names[frozenset(
            {"notes:write_note", "notes:delete_note"})]
        before = (await _single(client, "faulty:count_calls", {}))["tasks"]["x"]["output"]
        first = await _single(client, echo_name, {"p_t1_text": "same"})
        second = await _single(client, echo_name, {"p_t1_text": "same"})
        after = (await _single(client, "faulty:count_calls", {}))["tasks"]["x"]["output"]
        runs = []
        for _ in range(2):
            await _single(client, "notes:write_note", {"title": "t", "text": "again"})
            arguments = {"p_t1_title": "t", "p_t1_text": "x", "p_t2_title": "t"}
            runs.append(await _approved(client, [{"id": "x", "tool": notes_name, "arguments": arguments}]))
            notes = (await _single(client, "notes:list_notes", {}))["tasks"]["x"]["output"]
            assert notes == {"result": []}, notes
    assert "cached" not in first["tasks"]["x"] and second["tasks"]["x"]["cached"] is True
    assert first["tasks"]["x"]["output"] == second["tasks"]["x"]["output"] == {"result": "same"}
    assert after["result"] - before["result"] == 3  # two echoes for the first call, none for the cached one
    assert all(r["status"] == "completed" and "cached" not in r["tasks"]["x"] for r in runs)


async def test_concurrent_first_runs_of_one_workflow_make_exactly_one_capability(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        statuses: list[str] = []

        async def once(text: str) -> None:
            statuses.append((await run_dag(client, [echo("a", text), echo("b", "$OUTPUT[a].result", "a")]))["status"])

        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(once, f"run {i}")
        listed = await _until_usage(client, 5)
    assert statuses == ["completed"] * 5
    assert listed["total"] == 1 and listed["capabilities"][0]["usage_count"] == 5


async def test_a_workflow_calling_a_capability_becomes_a_capability_that_nests_it_by_id(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        assert (await run_dag(client, [echo("a", "x"), echo("b", "$OUTPUT[a].result+", "a")]))["status"] == "completed"
        inner = (await _until_usage(client, 1))["capabilities"][0]
        outer_dag = [{"id": "c", "tool": inner["name"], "arguments": {"p_t1_text": "in"}},
                     echo("d", "$OUTPUT[c].result!", "c")]
        first = await run_dag(client, outer_dag)
        listed = await _until_total(client, 2)
        outer = next(c for c in listed["capabilities"] if c["id"] != inner["id"])
        called = await _single(client, outer["name"], {"p_t1_p_t1_text": "new"})
    assert first["status"] == "completed" and first["tasks"]["d"]["output"] == {"result": "in+!"}
    assert sorted(outer["tools"]) == sorted([inner["id"], "faulty:echo"])
    assert called["status"] == "completed", called
    assert called["tasks"]["x"]["output"] == {"result": "new+!"}


async def test_counts_read_right_after_a_run_include_it_in_cap_list_and_search_alike(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    intent = "say a word and then shout it"
    async with gateway_client(indexed, "--database-url", database_url) as client:
        counts = []
        for text in ("one", "two"):
            assert (await run_dag(client, [echo("a", text), echo("b", "$OUTPUT[a].result!", "a")],
                                  intent=intent))["status"] == "completed"
            listed = (await client.call_tool("cap_list", {})).structured_content  # at once: no waiting here
            found = (await client.call_tool("search_tools", {"query": intent})).structured_content
            hit = next(r for r in found["results"] if r["kind"] == "capability")
            counts.append((listed["capabilities"][0]["usage_count"], hit["usage_count"]))
        called = await client.call_tool("call_tool", {"tool": hit["tool_id"], "arguments": {"p_t1_text": "three"}})
    assert counts == [(1, 1), (2, 2)]
    assert not called.is_error and "three!" in text_of(called)
