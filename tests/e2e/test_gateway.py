"""The gateway end to end: the SDK's stdio client spawns `python -m gateway serve` over real servers."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import psutil
import psycopg
import pytest
from mcp import Client, StdioServerParameters, types
from mcp.shared.exceptions import MCPError

from gateway.runtime.core import LIST_WAIT_S
from tests.downstream.test_elicit import NO_ONE_TO_ASK
from tests.e2e.support import (
    ROOT,
    gateway_client,
    gateway_command,
    gateway_env,
    gateway_processes,
    search,
    search_until,
    servers_back,
    servers_file,
    text_of,
    wait_gone,
)
from tests.eventually import eventually

pytestmark = pytest.mark.anyio


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(gateway_command(*args), capture_output=True, text=True, env=gateway_env(),
                          cwd=ROOT, timeout=timeout, stdin=subprocess.DEVNULL, check=False)


@pytest.fixture
def indexed(tmp_path: Path, database_url: str) -> Path:
    """A servers file whose tools `pml-gateway index` has already put into the test database."""
    config = servers_file(tmp_path)
    done = run_cli("index", "--config", str(config), "--database-url", database_url)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "time" in done.stdout and "running" in done.stdout
    return config


async def test_tools_list_shows_only_the_meta_tools(indexed: Path, database_url: str) -> None:
    async with gateway_client(indexed, "--database-url", database_url, settle=False) as client:
        tools = await client.list_tools()
    names = [t.name for t in tools.tools]
    assert names == [
        "search_tools", "call_tool", "execute_dag", "workflow", "execute_code", "cap_list", "cap_rename", "cap_merge",
    ]
    assert tools.tools[0].input_schema["required"] == ["query"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("what time is it in Tokyo", "time:get_current_time"),
        ("convert 3pm New York time to London time", "time:convert_time"),
        ("save a note about the meeting", "notes:write_note"),
        ("show me what I wrote in my note called groceries", "notes:read_note"),
    ],
)
async def test_search_tools_puts_the_right_tool_first(
    indexed: Path, database_url: str, query: str, expected: str
) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        payload = await search(client, query)
    assert payload["results"][0]["tool_id"] == expected, [r["tool_id"] for r in payload["results"]]
    assert payload["results"][0]["input_schema"]["type"] == "object"


async def test_a_found_tool_runs_through_the_gateway_with_the_real_result(indexed: Path, database_url: str) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        hit = (await search(client, "what time is it in Tokyo"))["results"][0]
        result = await client.call_tool(hit["call_as"], {"timezone": "Asia/Tokyo"})
    assert hit["call_as"] == "time__get_current_time"
    assert not result.is_error
    assert json.loads(text_of(result))["timezone"] == "Asia/Tokyo"


async def test_notes_written_through_the_gateway_read_back(indexed: Path, database_url: str) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        await client.call_tool("notes__write_note", {"title": "groceries", "text": "eggs, milk"})
        result = await client.call_tool("notes__read_note", {"title": "groceries"})
    assert "eggs, milk" in text_of(result)


async def test_a_killed_downstream_is_restarted_and_the_next_call_succeeds(
    indexed: Path, database_url: str
) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        first = await client.call_tool("faulty__count_calls", {})
        crashed = await client.call_tool("faulty__crash", {})
        await servers_back(client)  # a restart can outlast faulty's 1.5 s call timeout on a loaded machine
        echoed = await client.call_tool("faulty__echo", {"text": "back again"})
        count = await client.call_tool("faulty__count_calls", {})
    assert crashed.is_error and "faulty" in text_of(crashed)
    assert not echoed.is_error and "back again" in text_of(echoed)
    assert int(text_of(count)) < int(text_of(first)) + 3  # a fresh process counted from zero


async def test_a_hanging_tool_times_out_with_a_clear_error(indexed: Path, database_url: str) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        with anyio.fail_after(10):
            hung = await client.call_tool("faulty__hang", {})
        after = await client.call_tool("faulty__echo", {"text": "still here"})
    assert hung.is_error
    assert "faulty" in text_of(hung) and "1.5 s" in text_of(hung)
    assert "still here" in text_of(after)


async def test_a_client_s_progress_and_cancel_pass_through_the_gateway(
    tmp_path: Path, database_url: str
) -> None:
    patient = {"command": sys.executable, "args": [str(ROOT / "examples/faulty_server.py")], "callTimeoutMs": 60_000}
    config = servers_file(tmp_path, extra={"faulty": patient})  # no gateway timeout will cancel `hang` first
    reports: list[tuple[float, float | None, str | None]] = []
    workflow: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        reports.append((done, total, message))

    async def workflow_progress(done: float, total: float | None, message: str | None) -> None:
        workflow.append((done, total, message))

    tasks = [{"id": "a", "tool": "faulty:echo", "arguments": {"text": "x"}},
             {"id": "b", "tool": "faulty:echo", "arguments": {"text": "$OUTPUT[a].result!"}, "depends_on": ["a"]}]
    async with gateway_client(config, "--database-url", database_url) as client:
        ran = await client.call_tool("execute_dag", {"tasks": tasks}, progress_callback=workflow_progress)
        done = await client.call_tool("faulty__steps", {"count": 3, "ms": 20}, progress_callback=progress)
        with anyio.move_on_after(0.5):  # the client gives up: the SDK sends notifications/cancelled
            await client.call_tool("faulty__hang", {})

        async def count_cancelled() -> int:  # 0, falsy, until the SDK's notice has reached faulty
            return int(text_of(await client.call_tool("faulty__count_cancelled", {})))

        cancelled = await eventually(count_cancelled, timeout_s=20, interval_s=0.05, what="faulty's hang cancelled")
    assert text_of(done) == "3 steps done"
    assert reports == [(1, 3, "step 1 of 3"), (2, 3, "step 2 of 3"), (3, 3, "step 3 of 3")]
    assert cancelled == 1
    assert not ran.is_error and (ran.structured_content or {})["status"] == "completed"
    assert workflow == [(1, 2, "task a (faulty:echo): ok"), (2, 2, "task b (faulty:echo): ok")]


async def test_a_workflow_the_client_cancels_ends_aborted_and_is_not_left_to_be_continued(
    tmp_path: Path, database_url: str
) -> None:
    patient = {"command": sys.executable, "args": [str(ROOT / "examples/faulty_server.py")], "callTimeoutMs": 60_000}
    config = servers_file(tmp_path, extra={"faulty": patient})
    tasks = [{"id": "a", "tool": "faulty:echo", "arguments": {"text": "x"}},
             {"id": "h", "tool": "faulty:hang", "arguments": {}, "depends_on": ["a"]}]
    async with gateway_client(config, "--database-url", database_url) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, "execute_dag", {"tasks": tasks, "options": {"timeout_ms": 60_000}})
            polls = itertools.count(1)

            async def echo_and_hang_served() -> bool:  # besides these count_calls, each counted too
                return int(text_of(await client.call_tool("faulty__count_calls", {}))) - next(polls) >= 2

            await eventually(echo_and_hang_served, timeout_s=30, interval_s=0.02, what="faulty serving echo and hang")
            tg.cancel_scope.cancel()  # the client gives up: the SDK sends notifications/cancelled
        async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
            row = await (await conn.execute("SELECT workflow_id FROM workflow_dags")).fetchone()
        assert row is not None
        workflow_id = str(row[0])

        async def aborted() -> dict[str, Any] | None:
            status = await client.call_tool("workflow", {"workflow_id": workflow_id, "action": "status"})
            return status.structured_content if status.structured_content["status"] == "aborted" else None

        payload = await eventually(aborted, timeout_s=20, interval_s=0.05, what=f"{workflow_id} aborted")
        hang_cancelled = int(text_of(await client.call_tool("faulty__count_cancelled", {})))
    assert payload["tasks"]["a"]["status"] == "ok"
    assert payload["tasks"]["h"]["status"] == "skipped" and payload["tasks"]["h"]["error"] == "cancelled by the client"
    assert hang_cancelled == 1


async def test_a_server_with_a_wrong_command_shows_failed_while_the_others_work(
    tmp_path: Path, database_url: str
) -> None:
    config = servers_file(tmp_path, extra={"broken": {"command": str(tmp_path / "no-such-server")}})
    async with gateway_client(config, "--database-url", database_url) as client:
        payload = await search_until(client, "what time is it in Tokyo", "time:get_current_time")
        result = await client.call_tool("time__get_current_time", {"timezone": "Europe/Paris"})
    broken = [s for s in payload["unavailable_servers"] if s["server"] == "broken"]
    assert broken and broken[0]["state"] == "failed" and "no-such-server" in broken[0]["reason"]
    assert not result.is_error and "Europe/Paris" in text_of(result)


async def test_bad_search_arguments_are_an_error_naming_the_field(indexed: Path, database_url: str) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        result = await client.call_tool("search_tools", {"query": "time", "limit": 500})
        with pytest.raises(MCPError, match="unknown tool 'nope__tool'"):
            await client.call_tool("nope__tool", {})
    assert result.is_error and "'limit'" in text_of(result) and "maximum of 50" in text_of(result)


async def test_a_downstream_error_comes_back_as_an_error_result(indexed: Path, database_url: str) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        result = await client.call_tool("time__get_current_time", {"timezone": "Mars/Olympus"})
    assert result.is_error and "Mars/Olympus" in text_of(result)


async def test_expose_all_lists_the_downstream_tools_by_client_safe_name(tmp_path: Path, database_url: str) -> None:
    config = servers_file(tmp_path, expose="all")
    assert run_cli("index", "--config", str(config), "--database-url", database_url).returncode == 0
    async with gateway_client(config, "--database-url", database_url) as client:
        listed = {t.name: t for t in (await client.list_tools()).tools}
        listed_by_notes = {t.name: t for t in (await notes_tools())}
        found = await client.call_tool("search_tools", {"query": "save a note under a title", "limit": 10})
    hits = {h["tool_id"]: h for h in (found.structured_content or {})["results"]}
    assert hits["notes:write_note"]["title"] == "Write a note"
    assert "title" not in hits.get("time:get_current_time", {})
    assert {"search_tools", "time__get_current_time", "notes__write_note", "faulty__echo"} <= set(listed)
    # What the server says of a tool reaches the client: its title and its output schema, as given.
    write = listed["notes__write_note"]
    assert write.title == "Write a note" == listed_by_notes["write_note"].title
    assert write.output_schema is not None
    assert write.output_schema == listed_by_notes["write_note"].output_schema
    assert listed["time__get_current_time"].title is None


async def notes_tools() -> list[types.Tool]:
    """The notes server's own listing, straight from it."""
    params = StdioServerParameters(command=sys.executable, args=[str(ROOT / "examples" / "notes_server.py")],
                                   env={**os.environ, "NOTES_FILE": os.devnull})
    async with Client(params, read_timeout_seconds=60) as client:
        return list((await client.list_tools()).tools)


async def test_no_child_process_survives_the_gateway(indexed: Path, database_url: str) -> None:
    async with gateway_client(indexed, "--database-url", database_url) as client:
        await client.call_tool("faulty__echo", {"text": "up"})
        (gateway,) = gateway_processes(indexed)
        pids = [gateway.pid] + [c.pid for c in gateway.children(recursive=True)]
    assert len(pids) >= 4  # the gateway and its three servers
    assert await wait_gone(pids) == []


async def test_sigterm_stops_the_gateway_and_its_servers(indexed: Path, database_url: str) -> None:
    command = gateway_command("serve", "--config", str(indexed), "--database-url", database_url)
    process = await anyio.open_process(command, env=gateway_env(), cwd=ROOT)
    try:
        await eventually(lambda: len(psutil.Process(process.pid).children(recursive=True)) >= 3, timeout_s=30,
                         interval_s=0.05, what="the gateway's three servers started")
        pids = [c.pid for c in psutil.Process(process.pid).children(recursive=True)]
        process.send_signal(signal.SIGTERM)
        with anyio.fail_after(20):
            await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()
    assert await wait_gone(pids) == []


def test_the_embedded_postgres_starts_by_default_and_stops_on_exit(tmp_path: Path) -> None:
    config = servers_file(tmp_path)
    data_dir = tmp_path / "data"
    done = run_cli("status", "--config", str(config), "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"embedded {data_dir}" in done.stdout.replace("\n", " ") or str(data_dir) in done.stdout
    assert (data_dir / "pgdata" / "PG_VERSION").exists()
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (None, "config file not found"),
        ("{not json", "invalid JSON at line 1"),
        ('{"mcpServers": {"a": {"command": "x", "colour": 1}}}', "unknown key 'colour'"),
        ('{"mcpServers": {"a": {"command": "x", "env": {"K": "${PML_TEST_UNSET_VAR}"}}}}', "PML_TEST_UNSET_VAR"),
    ],
)
def test_a_bad_config_gives_one_clear_message(tmp_path: Path, document: str | None, message: str) -> None:
    path = tmp_path / "servers.json"
    if document is not None:
        path.write_text(document)
    done = run_cli("serve", "--config", str(path), timeout=30)
    assert done.returncode == 2
    assert message in done.stderr
    assert done.stderr.count("configuration error") == 1 and "Traceback" not in done.stderr
    assert done.stdout == ""


async def test_tools_of_servers_not_run_here_stay_stored_but_are_not_found(
    indexed: Path, tmp_path: Path, database_url: str
) -> None:
    only_time = _time_only_with_notes_disabled(indexed, tmp_path / "only-time.json")
    async with gateway_client(only_time, "--database-url", database_url) as client:
        payload = await search(client, "save a note about the meeting", limit=10)
    assert payload["results"] and all(r["server"] == "time" for r in payload["results"])
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        row = await (await conn.execute("SELECT count(*) FROM tool_schema WHERE server_id = 'notes'")).fetchone()
    assert row == (4,)  # nothing was deleted: another gateway on this database may still run notes


def _time_only_with_notes_disabled(config: Path, target: Path) -> Path:
    servers = json.loads(config.read_text())["mcpServers"]
    target.write_text(json.dumps({"mcpServers": {"time": servers["time"],
                                                 "notes": {**servers["notes"], "disabled": True}}}))
    return target


async def test_an_unreachable_database_leaves_the_gateway_up_saying_why_and_still_calling_tools(
    tmp_path: Path,
) -> None:
    config = servers_file(tmp_path)
    unreachable = "postgresql://nobody@127.0.0.1:1/nothing?connect_timeout=2"
    async with gateway_client(config, "--database-url", unreachable, settle=False) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        listed = await client.call_tool("cap_list", {})
        again = await client.call_tool("cap_list", {})
        called = await client.call_tool("time__get_current_time", {"timezone": "UTC"})
        query = {"query": "current time in a timezone"}

        async def answered() -> types.CallToolResult | None:  # the model loads after the database failed
            result = await client.call_tool("search_tools", query)
            return None if result.is_error else result

        searched = await eventually(answered, timeout_s=60, interval_s=0.2, what="search answering without Postgres")
    assert "search_tools" in names
    assert listed.is_error and "the tool index is not available: cannot reach Postgres" in text_of(listed)
    assert again.is_error and text_of(again) == text_of(listed)
    assert not called.is_error and "UTC" in text_of(called)
    # Search still answers, by wording over the tools the servers listed, and says why.
    assert not searched.is_error
    assert "the tool index has not been opened" in (searched.structured_content or {})["warnings"][0]
    assert (searched.structured_content or {})["results"][0]["tool_id"] == "time:get_current_time"


async def test_tools_list_is_answered_while_the_database_does_not_answer_yet(tmp_path: Path) -> None:
    """A client lists tools right after its handshake; a client that found nothing yet must not wait for the index
    (before, tools/list waited up to LIST_WAIT_S for the database and the model)."""
    config = servers_file(tmp_path)
    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as silent:  # accepts, never answers
        port = silent.extra(anyio.abc.SocketAttribute.local_port)
        hanging = f"postgresql://nobody@127.0.0.1:{port}/nothing?connect_timeout=30"
        async with anyio.create_task_group() as tg:
            tg.start_soon(silent.serve, _hold_open)
            async with gateway_client(config, "--database-url", hanging, settle=False) as client:
                with anyio.fail_after(LIST_WAIT_S - 1):
                    names = {t.name for t in (await client.list_tools()).tools}
                searched = await client.call_tool("search_tools", {"query": "current time in a timezone"})
            tg.cancel_scope.cancel()
    assert names == {
        "search_tools", "call_tool", "execute_dag", "workflow", "execute_code", "cap_list", "cap_rename", "cap_merge",
    }
    assert searched.is_error or "warnings" in (searched.structured_content or {})  # and search says it is not ready


async def _hold_open(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        await anyio.sleep_forever()


async def test_a_downstream_servers_question_reaches_the_user_and_its_answer_comes_back(
    tmp_path: Path, database_url: str
) -> None:
    brisk = {"command": sys.executable, "args": [str(ROOT / "examples/faulty_server.py")], "callTimeoutMs": 1_000}
    config = servers_file(tmp_path, extra={"faulty": brisk})
    asked: list[str] = []

    async def user(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        await anyio.sleep(2.0)  # longer than faulty's 1 s call timeout: a person answering is not a hung server
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    # A client of the handshake protocol versions (the 2026-07-28 revision allows no request back during a call)
    flags = ("--database-url", database_url)
    async with gateway_client(config, *flags, mode="legacy", elicitation_callback=user) as client:
        answered = await client.call_tool("faulty__ask", {"question": "Which colour?"})
        hung = await client.call_tool("faulty__hang", {})  # and afterwards the timeout holds again
    assert asked == ["Which colour?"]
    assert text_of(answered) == "answer: blue" and not answered.is_error
    assert hung.is_error and "1 s" in text_of(hung)


async def test_a_2026_client_answers_a_servers_questions_in_input_required_round_trips(
    tmp_path: Path, database_url: str
) -> None:
    asked: list[str] = []

    async def user(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"answer": f"answer {len(asked)}"})

    async with gateway_client(servers_file(tmp_path), "--database-url", database_url,
                              elicitation_callback=user) as client:  # the SDK's default: a 2026-07-28 session
        first = await client.call_tool("faulty__ask", {"question": "Which colour?"})
        second = await client.call_tool("faulty__ask", {"question": "Which size?"})
        raw = await client.session.call_tool("faulty__ask", {"question": "And?"}, allow_input_required=True)
        with pytest.raises(MCPError) as stale:
            await client.session.call_tool("faulty__ask", {"question": "And?"}, request_state="made-up",
                                           input_responses={"question": types.ElicitResult(action="cancel")},
                                           allow_input_required=True)
    assert asked == ["Which colour?", "Which size?"]
    assert (text_of(first), text_of(second)) == ("answer: answer 1", "answer: answer 2")
    assert isinstance(raw, types.InputRequiredResult) and raw.request_state
    assert raw.input_requests is not None and raw.input_requests["question"].params.message == "And?"
    assert "requestState does not name a question of 'faulty__ask' waiting for an answer" in str(stale.value)


async def test_a_question_from_a_server_is_refused_when_the_client_cannot_answer(
    tmp_path: Path, database_url: str
) -> None:
    async with gateway_client(servers_file(tmp_path), "--database-url", database_url) as client:
        refused = await client.call_tool("faulty__ask", {"question": "Which colour?"})
    assert text_of(refused) == f"not asked: the gateway did not forward this question: {NO_ONE_TO_ASK}"
