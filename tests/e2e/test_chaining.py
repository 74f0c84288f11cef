"""Gateways chained over stdio: an outer gateway fronts an inner one (over faulty, notes and time) as a server.

The inner gateway keeps its own database. Through the outer one a client finds the inner's meta-tools, calls
the inner's search, and runs an outer DAG whose tasks are DAGs for the inner gateway.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from gateway.config import load_config
from tests.conftest import fresh_database
from tests.e2e.support import ROOT, gateway_client, search_until, servers_file, text_of
from tests.e2e.test_workflows import run_dag
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

INNER_START_S = 90.0
"""The outer gateway's first sight of the inner's tools: two gateways, three servers, two model loads."""


@pytest.fixture
def inner_database_url(postgres_url: str) -> Iterator[str]:
    """A second fresh database, the inner gateway's own (dropped afterwards, like `database_url`)."""
    with fresh_database(postgres_url, "test_inner") as url:
        yield url


def inner_entry(config: Path, database_url: str, *, module: str = "gateway") -> dict[str, Any]:
    """A servers-file entry that runs a gateway over `config` (another file than the outer gateway's: an entry
    serving the very file it is listed in is the gateway itself, and skipped)."""
    return {"command": sys.executable, "args": ["-m", module, "serve", "--config", str(config),
                                                "--database-url", database_url], "cwd": str(ROOT)}


@pytest.fixture
def outer(tmp_path: Path, inner_database_url: str) -> Path:
    """An outer servers file whose one server, ``inner``, is a gateway over faulty, notes and time."""
    (tmp_path / "inner").mkdir()
    inner = servers_file(tmp_path / "inner")
    path = tmp_path / "outer.json"
    path.write_text(json.dumps({"mcpServers": {"inner": inner_entry(inner, inner_database_url)}}))
    return path


async def inner_search_until(client: Client, query: str, tool_id: str) -> dict[str, Any]:
    """The inner gateway's own search, called through the outer one, once it finds `tool_id` (the inner
    gateway indexes its servers' tools in the background, as any gateway does)."""

    async def found() -> dict[str, Any] | None:
        result = await client.call_tool("inner__search_tools", {"query": query, "limit": 5})
        assert not result.is_error, text_of(result)
        payload: dict[str, Any] = result.structured_content
        return payload if any(r["tool_id"] == tool_id for r in payload["results"]) else None

    payload: dict[str, Any] = await eventually(found, timeout_s=INNER_START_S, interval_s=0.2,
                                               what=f"{tool_id} found by the inner gateway for {query!r}")
    return payload


def test_a_gateway_entry_over_this_very_file_is_skipped_and_one_over_another_file_is_a_server(tmp_path: Path) -> None:
    path = tmp_path / "both.json"
    other = tmp_path / "inner.json"
    path.write_text(json.dumps({"mcpServers": {
        "self": inner_entry(path, "postgresql:///x"),
        "bare": {"command": "pml-gateway", "args": ["serve"]},
        "inner": inner_entry(other, "postgresql:///x")}}))
    assert [s.name for s in load_config(path, {}).servers] == ["inner"]


async def test_the_outer_gateway_finds_the_inner_meta_tools_and_proxies_its_search(
    outer: Path, database_url: str
) -> None:
    async with gateway_client(outer, "--database-url", database_url) as client:
        found = await search_until(client, "run a workflow of several tool calls as a DAG", "inner:execute_dag",
                                   timeout_s=INNER_START_S)
        searched = await search_until(client, "find the right tool for a task", "inner:search_tools")
        inner = await inner_search_until(client, "add two numbers", "faulty:add")
    assert "inner:execute_dag" in [r["tool_id"] for r in found["results"]]
    assert "inner:search_tools" in [r["tool_id"] for r in searched["results"]]
    assert inner["results"][0]["tool_id"] == "faulty:add"
    assert {r["tool_id"].split(":")[0] for r in inner["results"]} <= {"faulty", "notes", "time"}  # the inner's own


async def test_an_outer_dag_runs_dags_on_the_inner_gateway_and_passes_a_result_from_one_to_the_next(
    outer: Path, database_url: str
) -> None:
    inner_dag = [  # $$OUTPUT[ reaches the inner gateway as its own $OUTPUT[ reference
        {"id": "sum", "tool": "faulty:add", "arguments": {"a": 2, "b": 3}},
        {"id": "twice", "tool": "faulty:add", "depends_on": ["sum"],
         "arguments": {"a": "$$OUTPUT[sum].result", "b": "$$OUTPUT[sum].result"}},
    ]
    tasks = [
        {"id": "add", "tool": "inner:execute_dag", "arguments": {"tasks": inner_dag}},
        {"id": "say", "tool": "inner:execute_dag", "depends_on": ["add"],
         "arguments": {"tasks": [{"id": "echo", "tool": "faulty:echo",
                                  "arguments": {"text": "the sum is $OUTPUT[add].tasks.twice.output.result"}}]}},
    ]
    async with gateway_client(outer, "--database-url", database_url) as client:
        await search_until(client, "run a workflow of several tool calls as a DAG", "inner:execute_dag",
                           timeout_s=INNER_START_S)
        await inner_search_until(client, "add two numbers", "faulty:add")  # the inner gateway knows its tools
        payload = await run_dag(client, tasks)
    assert payload["status"] == "completed", json.dumps(payload)[:3000]
    inner_add, inner_say = payload["tasks"]["add"]["output"], payload["tasks"]["say"]["output"]
    assert inner_add["status"] == "completed"
    assert inner_add["tasks"]["sum"]["output"] == {"result": 5.0}
    assert inner_add["tasks"]["twice"]["output"] == {"result": 10.0}
    assert inner_say["status"] == "completed"
    assert inner_say["tasks"]["echo"]["output"] == {"result": "the sum is 10.0"}
