"""Two gateways on one database share one memory: what one learns the other uses, and no count is lost."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from mcp import Client
from psycopg.rows import dict_row

from tests.e2e.support import gateway_client, search, search_until
from tests.e2e.test_gateway import indexed  # noqa: F401 - the fixture
from tests.e2e.test_workflows import run_dag
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

HEARD_WITHIN_S = 20.0
"""Well under the 60 s periodic rebuild: an edge seen this soon came by notification."""
ADD_THEN_ECHO = [
    {"id": "sum", "tool": "faulty:add", "arguments": {"a": 1, "b": 2}},
    {"id": "say", "tool": "faulty:echo", "arguments": {"text": "sum is $OUTPUT[sum].result"}, "depends_on": ["sum"]},
]


async def related_after(client: Client, tool_id: str) -> list[str]:
    """The tools the learned graph says often come after `tool_id`, as the gateway's search shows them."""
    payload = await search(client, "add two numbers", limit=10, include_related=True)
    hit = next(r for r in payload["results"] if r["tool_id"] == tool_id)
    after: list[str] = hit.get("related", {}).get("after", [])
    return after


async def until_related(client: Client, tool_id: str, follower: str) -> list[str]:
    async def heard() -> list[str] | None:
        after = await related_after(client, tool_id)
        return after if follower in after else None

    after: list[str] = await eventually(heard, timeout_s=HEARD_WITHIN_S, interval_s=0.2,
                                        what=f"{follower} related after {tool_id}")
    return after


async def until_used(client: Client, times: int) -> list[dict[str, Any]]:
    """The capabilities, once the workflow's own has been used `times` times (learning goes on after a run
    returns; a capability is counted last, so by then its runs' edges and tool calls are recorded)."""

    async def used() -> list[dict[str, Any]] | None:
        listed = (await client.call_tool("cap_list", {})).structured_content
        if listed["total"] and listed["capabilities"][0]["usage_count"] >= times:
            capabilities: list[dict[str, Any]] = listed["capabilities"]
            return capabilities
        return None

    capabilities: list[dict[str, Any]] = await eventually(used, timeout_s=HEARD_WITHIN_S, interval_s=0.2,
                                                          what=f"the capability used {times} times")
    return capabilities


def rows(url: str, sql: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


async def test_what_one_gateway_learns_the_other_uses_after_its_notice(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    flags = ("--database-url", database_url)
    async with gateway_client(indexed, *flags) as a, gateway_client(indexed, *flags) as b:
        await search_until(b, "add two numbers", "faulty:add")
        before = await related_after(b, "faulty:add")
        for _ in range(3):
            assert (await run_dag(a, ADD_THEN_ECHO, intent="add two numbers and say the sum"))["status"] == "completed"
        capabilities = await until_used(b, 3)
        after = await until_related(b, "faulty:add", "faulty:echo")
    assert "faulty:echo" not in before
    assert "faulty:echo" in after
    [capability] = capabilities
    assert set(capability["tools"]) == {"faulty:add", "faulty:echo"}
    assert capability["usage_count"] == 3


async def test_two_gateways_recording_the_same_workflow_at_once_lose_no_count(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    runs = 5
    flags = ("--database-url", database_url)
    async with gateway_client(indexed, *flags) as a, gateway_client(indexed, *flags) as b:
        await search_until(a, "add two numbers", "faulty:add")
        await search_until(b, "add two numbers", "faulty:add")
        statuses: list[str] = []

        async def run(client: Client) -> None:
            statuses.append((await run_dag(client, ADD_THEN_ECHO))["status"])

        async with anyio.create_task_group() as tg:
            for _ in range(runs):
                tg.start_soon(run, a)
                tg.start_soon(run, b)
        capabilities = await until_used(a, 2 * runs)
    assert statuses == ["completed"] * 2 * runs
    edges = rows(database_url, "SELECT edge_type, observed_count, source FROM tool_dependency "
                               "WHERE from_tool_id = 'faulty:add' AND to_tool_id = 'faulty:echo'")
    usage = rows(database_url, "SELECT tool_id, calls, successes FROM tool_usage ORDER BY tool_id")
    assert edges == [{"edge_type": "dependency", "observed_count": 2 * runs, "source": "observed"}]
    assert usage == [{"tool_id": "faulty:add", "calls": 2 * runs, "successes": 2 * runs},
                     {"tool_id": "faulty:echo", "calls": 2 * runs, "successes": 2 * runs}]
    assert [c["usage_count"] for c in capabilities] == [2 * runs]
