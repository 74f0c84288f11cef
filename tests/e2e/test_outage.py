"""Postgres goes away under a running gateway: search, calls and workflows go on, no lesson is lost, and the
embedded Postgres is started again if it died."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import psycopg
import pytest
from mcp import Client

from gateway.db.embedded import EmbeddedPostgres
from tests.e2e.support import gateway_client, servers_file
from tests.e2e.test_http import base_url, http_gateway, mcp_client, new_key, post
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

BACK_WITHIN_S = 30.0
INTENT = "tell me the time in Tokyo while the database is down"


@pytest.fixture
async def stoppable(pg_dir: Path) -> AsyncIterator[EmbeddedPostgres]:
    """A Postgres of this test's own, which the test stops and starts under the gateway."""
    server = EmbeddedPostgres(pg_dir / "data")
    try:
        await anyio.to_thread.run_sync(server.start)
        yield server
    finally:
        await anyio.to_thread.run_sync(server.stop)


async def search(client: Client) -> dict[str, Any]:
    result = await client.call_tool("search_tools", {"query": "current time in a timezone", "limit": 3})
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def complete(client: Client) -> None:
    """Wait until search answers from a complete index (every server listed and indexed): no warnings."""

    async def answered() -> bool:
        return "warnings" not in await search(client)

    await eventually(answered, timeout_s=BACK_WITHIN_S, interval_s=0.1, what="a complete index")


def stored(url: str, sql: str, value: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql, (value,)).fetchall()  # type: ignore[arg-type]


async def test_an_outage_leaves_search_calls_and_workflows_working_and_loses_no_lesson(
    stoppable: EmbeddedPostgres, tmp_path: Path
) -> None:
    url = await anyio.to_thread.run_sync(stoppable.start)
    async with gateway_client(servers_file(tmp_path), "--database-url", url) as client:
        await complete(client)
        await anyio.to_thread.run_sync(stoppable.stop)

        found = await search(client)  # by wording and the graph, over the tools the servers listed
        assert found["results"][0]["tool_id"] == "time:get_current_time"
        assert found["warnings"][0].startswith("ranked by wording and the learned graph only")
        called = await client.call_tool("time__get_current_time", {"timezone": "Asia/Tokyo"})
        assert not called.is_error and (called.structured_content or {})["timezone"] == "Asia/Tokyo"
        ran = await client.call_tool("execute_dag", {"intent": INTENT, "tasks": [
            {"id": "now", "tool": "time:get_current_time", "arguments": {"timezone": "Asia/Tokyo"}}]})
        assert not ran.is_error and (ran.structured_content or {})["status"] == "completed"
        workflow_id = (ran.structured_content or {})["workflow_id"]
        listed = await client.call_tool("cap_list", {})
        assert listed.is_error and "the database is unreachable since" in str(listed.content)

        await anyio.to_thread.run_sync(stoppable.start)

        async def written() -> bool:  # what the workflow taught while the database was away is written once it is back
            return bool(stored(url, "SELECT 1 FROM workflow_execution WHERE workflow_id = %s", workflow_id)
                        and stored(url, "SELECT 1 FROM workflow_intent WHERE intent = %s", INTENT)
                        and stored(url, "SELECT 1 FROM episodic_events WHERE workflow_id = %s", workflow_id)
                        and "warnings" not in await search(client))

        await eventually(written, timeout_s=BACK_WITHIN_S, interval_s=0.2, what="the lessons of the outage written")
        assert not (await client.call_tool("cap_list", {})).is_error


async def test_an_embedded_postgres_that_dies_is_started_again_by_the_gateway(pg_dir: Path, tmp_path: Path) -> None:
    pidfile = pg_dir / "pgdata" / "postmaster.pid"
    async with gateway_client(servers_file(tmp_path), "--data-dir", str(pg_dir)) as client:
        await complete(client)
        killed = int(pidfile.read_text().split()[0])
        os.kill(killed, signal.SIGKILL)  # a crash, or the OOM killer

        async def indexed_again() -> bool:
            found = await search(client)
            if "warnings" not in found:
                return True
            assert found["results"][0]["tool_id"] == "time:get_current_time"
            return False

        await eventually(indexed_again, timeout_s=BACK_WITHIN_S * 2, interval_s=0.2,
                         what="search by the index again, its Postgres restarted")
        assert int(pidfile.read_text().split()[0]) != killed
        ran = await client.call_tool("execute_dag", {"intent": INTENT, "tasks": [
            {"id": "now", "tool": "time:get_current_time", "arguments": {"timezone": "UTC"}}]})
        assert not ran.is_error and (ran.structured_content or {})["status"] == "completed"
        assert not (await client.call_tool("cap_list", {})).is_error


async def test_a_gateway_started_before_its_postgres_serves_calls_and_opens_the_index_once_it_answers(
    stoppable: EmbeddedPostgres, tmp_path: Path
) -> None:
    url = await anyio.to_thread.run_sync(stoppable.start)
    await anyio.to_thread.run_sync(stoppable.stop)  # the URL is known; nothing answers at it yet
    async with gateway_client(servers_file(tmp_path), "--database-url", url, settle=False) as client:
        listed = await client.call_tool("cap_list", {})
        assert listed.is_error
        assert "the tool index is not available: cannot reach Postgres at" in str(listed.content)
        assert "(the gateway keeps trying to reach it)" in str(listed.content)

        async def called() -> bool:  # the servers start without the database
            return not (await client.call_tool("time__get_current_time", {"timezone": "UTC"})).is_error

        await eventually(called, timeout_s=BACK_WITHIN_S, interval_s=0.2, what="time called without Postgres")

        async def searched(*, indexed: bool) -> dict[str, Any] | None:
            answer = await client.call_tool("search_tools", {"query": "current time in a timezone", "limit": 3})
            payload = answer.structured_content or {}
            return None if answer.is_error or (indexed and "warnings" in payload) else payload

        # by wording over the tools the servers listed, once the model has loaded
        early = await eventually(lambda: searched(indexed=False), timeout_s=BACK_WITHIN_S, interval_s=0.2,
                                 what="search answering without Postgres")
        assert early["results"][0]["tool_id"] == "time:get_current_time"
        assert "the tool index has not been opened" in early["warnings"][0]

        await anyio.to_thread.run_sync(stoppable.start)
        late = await eventually(lambda: searched(indexed=True), timeout_s=BACK_WITHIN_S * 2, interval_s=0.5,
                                what="search by the index, once Postgres answers")
        assert late["results"][0]["tool_id"] == "time:get_current_time"


async def test_over_http_known_keys_and_their_sessions_go_on_through_an_outage_and_unknown_keys_wait(
    stoppable: EmbeddedPostgres, tmp_path: Path
) -> None:
    url = await anyio.to_thread.run_sync(stoppable.start)
    alice, bob = new_key(url, "alice"), new_key(url, "bob")
    with http_gateway(servers_file(tmp_path), url, tmp_path / "gateway.log", "--rate-limit", "1000"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, alice, mode="legacy") as client:  # a session, opened while Postgres is up
            await complete(client)
            await anyio.to_thread.run_sync(stoppable.stop)

            assert (await search(client))["warnings"]  # alice's key and session are known here
            called = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
            assert not called.is_error
            refused = await post(base, "/metrics", f"Bearer {bob}")  # a key never seen: nobody can check it now
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            assert "the database is unreachable" in refused.json()["message"]

            await anyio.to_thread.run_sync(stoppable.start)

            async def bob_let_in() -> bool:
                return (await post(base, "/metrics", f"Bearer {bob}")).status_code == 200

            await eventually(bob_let_in, timeout_s=BACK_WITHIN_S, interval_s=0.2, what="bob's key checked again")
            assert not (await client.call_tool("time__get_current_time", {"timezone": "UTC"})).is_error
