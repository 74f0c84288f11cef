"""Postgres frozen or away, the gateway killed inside a layer, NUL in what is stored: nothing finished runs twice,
nothing is lost, and no call waits on a database that does not answer."""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psutil
import psycopg
import pytest
from mcp import Client
from mcp.shared.exceptions import MCPError

from gateway.db.embedded import EmbeddedPostgres
from tests.e2e.support import gateway_client, gateway_processes, search_until, servers_file, wait_gone
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

HOSTILE = str(Path(__file__).with_name("hostile_server.py"))
ANSWER_WITHIN_S = 20.0
"""A call while Postgres is frozen answers within the query deadline and a recheck, far below a hang's minutes."""
RUNS_IN_OUTAGE = 3


@pytest.fixture
async def postgres(pg_dir: Path) -> AsyncIterator[tuple[EmbeddedPostgres, str]]:
    """A Postgres of this test's own (and its URL), which the test freezes, stops and starts under gateways."""
    server = EmbeddedPostgres(pg_dir / "data")
    try:
        url = await anyio.to_thread.run_sync(server.start)
        yield server, url
    finally:
        _signal_all(pg_dir, signal.SIGCONT)
        await anyio.to_thread.run_sync(server.stop)


def _postgres_processes(pg_dir: Path) -> list[psutil.Process]:
    pid = int(next(pg_dir.rglob("postmaster.pid")).read_text().split()[0])
    postmaster = psutil.Process(pid)
    return [postmaster, *postmaster.children(recursive=True)]


def _signal_all(pg_dir: Path, sig: signal.Signals) -> None:
    for process in _postgres_processes(pg_dir) if any(pg_dir.rglob("postmaster.pid")) else []:
        try:
            process.send_signal(sig)
        except psutil.NoSuchProcess:
            pass


@contextmanager
def frozen(pg_dir: Path) -> Iterator[None]:
    """Postgres hung, not refusing: every one of its processes stopped (SIGSTOP), then let go."""
    _signal_all(pg_dir, signal.SIGSTOP)
    try:
        yield
    finally:
        _signal_all(pg_dir, signal.SIGCONT)


def hostile_servers(tmp_path: Path) -> Path:
    return servers_file(tmp_path, extra={"hostile": {
        "command": sys.executable, "args": [HOSTILE], "env": {"HOSTILE_MARKS": str(tmp_path / "marks")}}})


def marks(tmp_path: Path) -> list[str]:
    path = tmp_path / "marks"
    return path.read_text().split() if path.exists() else []


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


async def timed(client: Client, tool: str, arguments: dict[str, Any]) -> tuple[float, Any]:
    began = anyio.current_time()
    result = await client.call_tool(tool, arguments)
    return anyio.current_time() - began, result


async def test_a_frozen_postgres_makes_search_cap_list_and_workflows_answer_in_seconds_not_hang(
    postgres: tuple[EmbeddedPostgres, str], pg_dir: Path, tmp_path: Path
) -> None:
    _, url = postgres
    async with gateway_client(hostile_servers(tmp_path), "--database-url", url) as client:
        await search_until(client, "current time in a timezone", "time:get_current_time")  # indexed: ranked by wording
        assert not (await client.call_tool("cap_list", {})).is_error
        with frozen(pg_dir):
            took, found = await timed(client, "search_tools", {"query": "current time in a timezone", "limit": 3})
            assert took < ANSWER_WITHIN_S, took
            assert not found.is_error, found.content
            assert found.structured_content["results"][0]["tool_id"] == "time:get_current_time"
            assert found.structured_content["warnings"][0].startswith("ranked by wording and the learned graph only")
            took, listed = await timed(client, "cap_list", {})
            assert took < ANSWER_WITHIN_S, took
            assert listed.is_error and "the database is unreachable since" in str(listed.content)
            added = await client.call_tool("call_tool", {"tool": "faulty:add_tool", "arguments": {"name": "zebracorn"}})
            assert not added.is_error, added.content
            new = await search_until(client, "zebracorn", "faulty:zebracorn", timeout_s=ANSWER_WITHIN_S)
            assert new["results"][0]["tool_id"] == "faulty:zebracorn"  # listed while frozen: found by its words
            took, ran = await timed(client, "execute_dag", {"tasks": [
                {"id": "a", "tool": "hostile:mark", "arguments": {"label": "a"}},
                {"id": "b", "tool": "hostile:mark", "arguments": {"label": "b"}, "depends_on": ["a"]}]})
            assert took < ANSWER_WITHIN_S, took
            assert ran.structured_content["status"] == "completed", ran.content
            workflow_id = ran.structured_content["workflow_id"]

        async def written() -> bool:
            return not (await client.call_tool("cap_list", {})).is_error and bool(
                rows(url, "SELECT 1 FROM workflow_execution WHERE workflow_id = %s", workflow_id))

        await eventually(written, timeout_s=30.0, interval_s=0.2, what="answers and the workflow written, thawed")
    assert marks(tmp_path) == ["a", "b"]


async def test_a_multi_layer_workflow_runs_through_an_outage_and_is_written_once_postgres_is_back(
    postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    server, url = postgres
    intent = "mark three steps while the database is away"
    async with gateway_client(hostile_servers(tmp_path), "--database-url", url) as client:
        await anyio.to_thread.run_sync(server.stop)
        ids = []
        for run in range(RUNS_IN_OUTAGE):
            ran = await client.call_tool("execute_dag", {"intent": intent, "tasks": [
                {"id": "a", "tool": "hostile:mark", "arguments": {"label": f"a{run}"}},
                {"id": "b", "tool": "hostile:mark", "arguments": {"label": f"b{run}"}, "depends_on": ["a"]},
                {"id": "c", "tool": "hostile:echo", "arguments": {"text": "$OUTPUT[b].result"}, "depends_on": ["b"]}]})
            assert not ran.is_error, ran.content
            summary = ran.structured_content
            assert summary["status"] == "completed" and summary["layers"] == 3
            ids.append(summary["workflow_id"])
        assert marks(tmp_path) == [f"{step}{run}" for run in range(RUNS_IN_OUTAGE) for step in "ab"]
        await anyio.to_thread.run_sync(server.start)

        def count(table: str) -> int:
            return len(rows(url, f"SELECT DISTINCT workflow_id FROM {table} WHERE workflow_id = ANY(%s)", ids))

        async def written() -> bool:
            return all(count(table) == RUNS_IN_OUTAGE for table in ("workflow_dags", "workflow_checkpoint",
                                                                     "workflow_execution", "episodic_events"))

        await eventually(written, timeout_s=30.0, interval_s=0.2, what="every workflow written once Postgres is back")
        assert len(rows(url, "SELECT 1 FROM workflow_execution WHERE workflow_id = ANY(%s) AND success", ids)) \
            == RUNS_IN_OUTAGE  # none lost, none written twice
        status = await client.call_tool("workflow", {"workflow_id": ids[0], "action": "status"})
        assert status.structured_content["status"] == "completed"


async def test_a_task_that_finished_before_a_crash_inside_its_layer_is_not_run_again(
    postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    _, url = postgres
    config = hostile_servers(tmp_path)
    tasks = [
        {"id": "a", "tool": "hostile:mark", "arguments": {"label": "a"}},
        {"id": "b1", "tool": "hostile:mark", "arguments": {"label": "b1", "ms": 100}, "depends_on": ["a"]},
        {"id": "b2", "tool": "hostile:mark", "arguments": {"label": "b2", "ms": 4000}, "depends_on": ["a"]},
        {"id": "c", "tool": "hostile:mark", "arguments": {"label": "c"}, "depends_on": ["b1", "b2"]},
    ]

    async def run_until_killed(client: Client) -> None:
        with pytest.raises(MCPError, match="Connection closed"):
            await client.call_tool("execute_dag", {"intent": "mark in layers", "tasks": tasks})

    async with gateway_client(config, "--database-url", url) as client, anyio.create_task_group() as tg:
        tg.start_soon(run_until_killed, client)
        await eventually(lambda: "b1" in marks(tmp_path), timeout_s=30.0, interval_s=0.02, what="b1 done")
        await anyio.sleep(0.5)  # its result's one-row write, well inside b2's 4 s
        pids = [p.pid for p in gateway_processes(config)]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        assert await wait_gone(pids) == []
    (workflow_id,), = rows(url, "SELECT workflow_id FROM workflow_dags")
    async with gateway_client(config, "--database-url", url):
        await eventually(lambda: rows(url, "SELECT 1 FROM workflow_execution WHERE workflow_id = %s", workflow_id),
                         timeout_s=60.0, interval_s=0.2, what="the workflow continued after the restart")
    done = marks(tmp_path)
    assert (done.count("a"), done.count("b1"), done.count("c")) == (1, 1, 1), done
    assert "b2" in done


async def test_a_nul_in_a_task_output_and_arguments_loses_no_paused_workflow(
    postgres: tuple[EmbeddedPostgres, str], tmp_path: Path
) -> None:
    _, url = postgres
    config = hostile_servers(tmp_path)
    async with gateway_client(config, "--database-url", url) as client:
        ran = await client.call_tool("execute_dag", {"options": {"per_layer_validation": True}, "tasks": [
            {"id": "n", "tool": "hostile:nul", "arguments": {}},
            {"id": "e", "tool": "hostile:echo", "arguments": {"text": "x\x00y"}, "depends_on": ["n"]}]})
        assert not ran.is_error, ran.content
        assert ran.structured_content["status"] == "layer_complete"
        assert ran.structured_content["tasks"]["n"]["output"] == {"result": "before\x00after"}
        workflow_id = ran.structured_content["workflow_id"]
    async with gateway_client(config, "--database-url", url) as client:
        went_on = await client.call_tool("workflow", {"workflow_id": workflow_id, "action": "continue"})
        assert not went_on.is_error, went_on.content
        assert went_on.structured_content["status"] == "completed"
        assert went_on.structured_content["tasks"]["e"]["output"] == {"result": "x\x00y"}
    (stored,), = rows(url, "SELECT dag FROM workflow_dags WHERE workflow_id = %s", workflow_id)
    assert stored["tasks"][1]["arguments"] == {"text": "x\ufdd0y"}  # read without the gateway's loader
