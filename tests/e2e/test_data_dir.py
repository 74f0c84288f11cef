"""Gateways on one data directory (the default one, when Claude Desktop and Claude Code both start a gateway):
the second shares the first one's embedded Postgres and runs it once the first has left, and `status` says what
the running gateways see, without starting a database of its own."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mcp import types

from tests.e2e.support import ROOT, gateway_client, gateway_command, gateway_env, search, servers_file, text_of
from tests.e2e.test_workflows import echo, run_dag
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

TAKE_OVER_S = 30.0


def status(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gateway_command("status", "--data-dir", str(data_dir)), capture_output=True, text=True,
                          env=gateway_env(), cwd=ROOT, timeout=60, stdin=subprocess.DEVNULL, check=False)


async def test_status_shows_the_running_gateways_servers_as_they_are_now_without_a_database(
    tmp_path: Path, pg_dir: Path
) -> None:
    config = servers_file(tmp_path)
    async with gateway_client(config, "--data-dir", str(pg_dir)):  # waits until no server is still starting
        shown = status(pg_dir)
    after = status(pg_dir)
    assert shown.returncode == 0, shown.stderr[-2000:]
    lines = {line.split()[1]: line for line in shown.stdout.splitlines() if line.startswith("│")}
    assert all("running" in lines[name] for name in ("notes", "faulty", "time")), shown.stdout
    assert "index: open" in shown.stdout and "gateway pid" in shown.stdout
    # It read the gateway's own account: no Postgres of its own, no model loaded.
    assert "embedded Postgres" not in shown.stderr and "embedding model" not in shown.stderr
    assert after.stdout.startswith(f"no gateway is running on {pg_dir}")
    stored = {line.split()[1]: line for line in after.stdout.splitlines() if line.startswith("│")}
    assert "last recorded state" in after.stdout and all("stopped" in stored[n] for n in ("notes", "faulty", "time"))


async def test_a_second_gateway_on_the_data_directory_shares_its_postgres_and_runs_it_once_the_first_leaves(
    tmp_path: Path, pg_dir: Path
) -> None:
    config = servers_file(tmp_path)
    async with gateway_client(config, "--data-dir", str(pg_dir)) as second:
        async with gateway_client(config, "--data-dir", str(pg_dir)) as first:
            found = await search(first, "what time is it in Tokyo")
            both = status(pg_dir).stdout.count("gateway pid")

        async def listed_again() -> types.CallToolResult | None:
            answer = await second.call_tool("cap_list", {})
            return None if answer.is_error else answer

        # the first gateway took its Postgres along: this one starts it again
        listed = await eventually(listed_again, timeout_s=TAKE_OVER_S, interval_s=0.2,
                                  what="cap_list answering on the second gateway")
        done = await run_dag(second, [echo("a", "x"), echo("b", "$OUTPUT[a].result", "a")])
        learned = await second.call_tool("cap_list", {})
    assert found["results"][0]["tool_id"] == "time:get_current_time"
    assert both == 2
    assert not listed.is_error and done["status"] == "completed"
    assert (learned.structured_content or {})["total"] == 1, text_of(learned)
