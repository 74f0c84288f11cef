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
    assert capability["name"].startswith("faulty:exec_") and capability["usage_count"] == 2
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
        with anyio.fail_after(20):
            while (await client.call_tool("cap_list", {})).structured_content["total"] < 3:
                await anyio.sleep(0.1)
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
    with anyio.fail_after(20):
        while True:
            listed = (await client.call_tool("cap_list", {})).structured_content
            if listed["total"] and listed["capabilities"][0]["usage_count"] >= usage:
                return listed
            await anyio.sleep(0.1)
