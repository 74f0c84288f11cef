"""The gateway over streamable HTTP: API keys, one user's workflows kept from another, rate limits, /metrics."""

from __future__ import annotations

import json
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import psycopg
import pytest
from mcp import Client, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

from tests.e2e.support import ROOT, gateway_client, gateway_command, gateway_env, search_until, text_of
from tests.e2e.test_gateway import indexed, run_cli  # noqa: F401 - the fixture
from tests.e2e.test_workflows import echo, run_dag
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

READY_S = 60.0
_SERVING = re.compile(r"serving MCP at (http://\S+)/mcp")
_KEY = re.compile(r"\bac_[A-Za-z0-9_-]{20,}")


def new_key(database_url: str, name: str) -> str:
    done = run_cli("users", "add", name, "--database-url", database_url)
    assert done.returncode == 0, done.stderr[-2000:]
    match = _KEY.search(done.stdout)
    assert match is not None, done.stdout
    return match.group(0)


@contextmanager
def http_gateway(config: Path, database_url: str, log: Path, *flags: str,
                 env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    """`pml-gateway serve --http 127.0.0.1:0` (in `env`, else the tests' gateway environment), stopped with
    SIGTERM at the end."""
    command = gateway_command("serve", "--config", str(config), "--database-url", database_url,
                              "--http", "127.0.0.1:0", *flags)
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=env or gateway_env(), cwd=ROOT, stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=sink)
    try:
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def base_url(log: Path) -> str:
    async def serving() -> re.Match[str] | None:
        return _SERVING.search(await anyio.Path(log).read_text(errors="replace"))

    match = await eventually(serving, timeout_s=READY_S, interval_s=0.05, what=f"'serving MCP at' in {log}")
    return match.group(1)


@asynccontextmanager
async def mcp_client(base: str, key: str, *, mode: Any = "auto", **options: Any) -> AsyncIterator[Client]:
    """The SDK's client over HTTP with `key` (and `options`: callbacks, say); ``mode="legacy"`` speaks the 2025
    handshake, which opens a session."""
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    transport = streamable_http_client(f"{base}/mcp", http_client=http)
    async with http, Client(transport, read_timeout_seconds=60, mode=mode, **options) as client:
        yield client


async def post(base: str, path: str, authorization: str | None) -> httpx2.Response:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    body = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    async with httpx2.AsyncClient(timeout=30) as http:
        if path == "/mcp":
            return await http.post(f"{base}{path}", json=body, headers=headers)
        return await http.get(f"{base}{path}", headers=headers)


async def test_every_request_needs_a_valid_unrevoked_key_and_gets_one_message_when_refused(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    key = new_key(database_url, "alice")
    revoked = new_key(database_url, "bob")
    assert run_cli("users", "revoke", "bob", "--database-url", database_url).returncode == 0
    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        refused = [await post(base, "/mcp", auth) for auth in (
            None, "Basic abc", f"Bearer {key[:-1]}", "Bearer ac_unknown000000000000000000000000", f"Bearer {revoked}")]
        metrics = await post(base, "/metrics", None)
        async with mcp_client(base, key) as client:
            found = (await client.call_tool("search_tools", {"query": "echo a text back"})).structured_content
        metrics_ok = await post(base, "/metrics", f"Bearer {key}")
    assert [r.status_code for r in refused] == [401] * 5 and metrics.status_code == 401
    assert len({r.json()["message"] for r in refused}) == 1
    assert all(r.headers["www-authenticate"].startswith("Bearer") for r in refused)
    assert found is not None and found["results"][0]["tool_id"] == "faulty:echo"
    assert metrics_ok.status_code == 200 and metrics_ok.headers["content-type"].startswith("text/plain")


async def test_one_users_workflow_is_unknown_to_another(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    alice, carol = new_key(database_url, "alice"), new_key(database_url, "carol")
    write = {"id": "w", "tool": "notes:write_note", "arguments": {"title": "t", "text": "x"}}
    delete = {"id": "d", "tool": "notes:delete_note", "arguments": {"title": "t"}, "depends_on": ["w"]}
    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, alice) as client:
            paused = await run_dag(client, [write, delete])
        async with mcp_client(base, carol) as client:
            stolen = await client.call_tool("workflow", {"workflow_id": paused["workflow_id"], "action": "status"})
            unknown = await client.call_tool("workflow", {"workflow_id": "wf_0000000000000000", "action": "status"})
        async with mcp_client(base, alice) as client:
            own = await client.call_tool("workflow", {"workflow_id": paused["workflow_id"], "action": "status"})
    assert paused["status"] == "approval_required"
    assert stolen.is_error and text_of(stolen).replace(paused["workflow_id"], "X") == text_of(unknown).replace(
        "wf_0000000000000000", "X")
    assert not own.is_error and own.structured_content is not None
    assert own.structured_content["status"] == "approval_required"


async def test_a_relayed_question_is_answered_only_by_the_user_whose_call_asked_it(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    alice, carol = new_key(database_url, "alice"), new_key(database_url, "carol")
    answer = {"question": types.ElicitResult(action="accept", content={"answer": "blue"})}

    async def user(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        return answer["question"]

    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, alice, elicitation_callback=user) as client:
            asked = await client.session.call_tool("faulty__ask", {"question": "Which colour?"},
                                                   allow_input_required=True)
            assert isinstance(asked, types.InputRequiredResult) and asked.request_state is not None
            async with mcp_client(base, carol, elicitation_callback=user) as other:
                with pytest.raises(MCPError, match="does not name a question"):
                    await other.session.call_tool("faulty__ask", {"question": "Which colour?"}, input_responses=answer,
                                                  request_state=asked.request_state, allow_input_required=True)
            done = await client.session.call_tool("faulty__ask", {"question": "Which colour?"}, input_responses=answer,
                                                  request_state=asked.request_state, allow_input_required=True)
            whole = await client.call_tool("faulty__ask", {"question": "Which size?"})  # the SDK drives the rounds
    assert isinstance(done, types.CallToolResult) and text_of(done) == "answer: blue"
    assert text_of(whole) == "answer: blue"


async def test_a_key_past_its_rate_limit_gets_429_with_retry_after_then_recovers(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    key = new_key(database_url, "dave")
    other = new_key(database_url, "erin")
    with http_gateway(indexed, database_url, tmp_path / "gateway.log", "--rate-limit", "3", "--rate-window", "4"):
        base = await base_url(tmp_path / "gateway.log")
        with anyio.fail_after(30):  # five at once inside one window: three pass (retried if a window edge fell between)
            while True:
                answers = [await post(base, "/metrics", f"Bearer {key}") for _ in range(5)]
                if [a.status_code for a in answers] == [200, 200, 200, 429, 429]:
                    break
                await anyio.sleep(float(answers[-1].headers.get("retry-after", "0.2")))
        unaffected = await post(base, "/metrics", f"Bearer {other}")

        async def allowed() -> httpx2.Response | None:
            answer = await post(base, "/metrics", f"Bearer {key}")
            return None if answer.status_code == 429 else answer

        again = await eventually(allowed, timeout_s=10, interval_s=0.25, what="a new window for the limited key")
    assert all(1 <= int(a.headers["retry-after"]) <= 4 for a in answers[3:])
    assert answers[3].json()["error"] == "rate_limited"
    assert unaffected.status_code == 200 and again.status_code == 200


async def test_a_workflow_runs_over_http_and_the_port_in_use_is_a_clear_error(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    key = new_key(database_url, "frank")
    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, key) as client:
            done = await run_dag(client, [echo("a", "over http"), echo("b", "$OUTPUT[a].result!", "a")])
        port = base.rsplit(":", 1)[1]
        clash = run_cli("serve", "--config", str(indexed), "--database-url", database_url, "--http",
                        f"127.0.0.1:{port}")
    assert done["status"] == "completed" and done["tasks"]["b"]["output"] == {"result": "over http!"}
    assert clash.returncode == 2 and f"127.0.0.1:{port} is in use" in clash.stderr


async def test_a_gateway_chained_over_http_passes_a_search_and_a_dag_through_both(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    key = new_key(database_url, "outer")
    reports: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        reports.append((done, total, message))

    with http_gateway(indexed, database_url, tmp_path / "inner.log"):
        base = await base_url(tmp_path / "inner.log")
        outer = tmp_path / "outer.json"
        inner_entry = {"type": "http", "url": f"{base}/mcp", "headers": {"Authorization": f"Bearer {key}"}}
        outer.write_text(json.dumps({"mcpServers": {"inner": inner_entry}}))
        async with gateway_client(outer, "--database-url", database_url) as client:
            found = await search_until(client, "run a workflow of tool calls", "inner:execute_dag")
            inner_search = await client.call_tool("inner__search_tools", {"query": "echo a text back"})
            nested = [echo("a", "through"), echo("b", "$$OUTPUT[a].result both", "a")]  # $$: the inner one's
            relayed = await client.call_tool("inner__execute_dag", {"tasks": [echo("a", "x"), echo("b", "y", "a")]},
                                             progress_callback=progress)
            then = [{"id": "c", "tool": "faulty:echo", "arguments": {"text": "$OUTPUT[x].tasks.b.output.result!"}}]
            done = await run_dag(client, [{"id": "x", "tool": "inner:execute_dag", "arguments": {"tasks": nested}},
                                          {"id": "y", "tool": "inner:execute_dag", "arguments": {"tasks": then}}])
    assert any(r["tool_id"] == "inner:search_tools" for r in found["results"])
    assert inner_search.structured_content is not None
    assert inner_search.structured_content["results"][0]["tool_id"] == "faulty:echo"
    assert done.get("status") == "completed", done
    assert done["tasks"]["y"]["output"]["tasks"]["c"]["output"] == {"result": "through both!"}
    # The inner gateway's progress, over HTTP, relayed by the outer one under this client's token.
    assert not relayed.is_error
    assert reports == [(1, 2, "task a (faulty:echo): ok"), (2, 2, "task b (faulty:echo): ok")]


async def test_a_capability_is_its_makers_until_shared_and_only_its_maker_changes_it(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    alice, carol = new_key(database_url, "alice"), new_key(database_url, "carol")
    intent = "echo a word and then echo it again"
    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, alice) as client:
            done = await run_dag(client, [echo("a", "x"), echo("b", "$OUTPUT[a].result", "a")], intent=intent)

            async def learned() -> dict[str, Any] | None:
                listed: dict[str, Any] = (await client.call_tool("cap_list", {})).structured_content
                return listed if listed["total"] else None

            own = await eventually(learned, timeout_s=20, interval_s=0.1, what="alice's capability listed")
            name = own["capabilities"][0]["name"]
            async with mcp_client(base, carol) as other:
                hidden = (await other.call_tool("cap_list", {})).structured_content
                found = (await other.call_tool("search_tools", {"query": intent})).structured_content
                refused = await other.call_tool("execute_dag", {"tasks": [{"id": "c", "tool": name, "arguments": {
                    "p_t1_text": "y"}}]})
                shared = await client.call_tool("cap_rename", {"name": name, "visibility": "public"})
                seen = (await other.call_tool("cap_list", {})).structured_content
                called = await run_dag(other, [{"id": "c", "tool": name, "arguments": {"p_t1_text": "y"}}])
                renamed = await other.call_tool("cap_rename", {"name": name, "action": "mine"})
    assert done["status"] == "completed" and own["capabilities"][0]["visibility"] == "private"
    assert hidden["total"] == 0 and all(r["kind"] == "tool" for r in found["results"])
    assert refused.is_error and "unknown tool" in text_of(refused)
    assert not shared.is_error and seen["total"] == 1 and seen["capabilities"][0]["visibility"] == "public"
    assert called["status"] == "completed" and called["tasks"]["c"]["output"] == {"result": "y"}
    assert renamed.is_error and "only its maker" in text_of(renamed)


async def test_the_graph_page_is_served_to_a_logged_in_user_only(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    key = new_key(database_url, "gina")
    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        anonymous = await post(base, "/graph", None)
        page = await post(base, "/graph", f"Bearer {key}")
    assert anonymous.status_code == 401
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "<svg" in page.text and "http://" not in page.text.replace("http://www.w3.org", "")


async def test_sessions_are_kept_in_postgres_and_an_expired_one_is_refused(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    key = new_key(database_url, "hana")
    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, key, mode="legacy") as client:
            first = await client.call_tool("cap_list", {})
            sessions = sql(database_url, "SELECT u.username, s.expires_at > now() + interval '23 hours' "
                                         "FROM http_session s JOIN users u ON u.id = s.user_id")
            sql(database_url, "UPDATE http_session SET expires_at = now() - interval '1 second'")
            refused = await failure_of(client.call_tool("cap_list", {}))
    assert not first.is_error and sessions == [("hana", True)]
    assert refused is not None


async def failure_of(call: Any) -> BaseException | None:
    """What `call` raised (within 30 s), or None; the SDK raises its own transport error for a 404."""
    try:
        with anyio.fail_after(30):
            await call
    except Exception as exc:
        return exc
    return None


def sql(url: str, statement: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement)  # type: ignore[call-overload]
        return cursor.fetchall() if cursor.description else []


async def test_a_handshake_client_over_http_is_asked_during_its_call(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    alice = new_key(database_url, "alice")

    async def user(context: object, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"answer": "blue"})

    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, alice, mode="legacy", elicitation_callback=user) as client:
            result = await client.call_tool("faulty__ask", {"question": "Which colour?"})
    assert text_of(result) == "answer: blue"  # its session's stream carries the question back


async def test_code_runs_as_its_user_over_http_and_reaches_neither_another_users_capabilities_nor_runs(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    alice, carol = new_key(database_url, "alice"), new_key(database_url, "carol")
    program = 'w = "{word}"\nr = await call("faulty:echo", {{"text": w}})\nawait call("faulty:echo", {{"text": r}})'
    pause = 'await call("notes:delete_note", {"title": "t"})'
    with http_gateway(indexed, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with mcp_client(base, alice) as client:
            for word in ("one", "two"):
                assert not (await client.call_tool("execute_code", {"code": program.format(word=word)})).is_error

            async def learned() -> dict[str, Any] | None:
                listed: dict[str, Any] = (await client.call_tool("cap_list", {})).structured_content
                return listed if listed["total"] else None

            name = (await eventually(learned, timeout_s=30, interval_s=0.1, what="alice's program learned")
                    )["capabilities"][0]["name"]
            paused = (await client.call_tool("execute_code", {"code": pause})).structured_content or {}
            own = await client.call_tool("execute_code", {"code": f'await call("{name}", {{"w": "mine"}})'})
        async with mcp_client(base, carol) as other:
            stolen = await other.call_tool("execute_code", {"code": f'await call("{name}", {{"w": "x"}})'})
            steer = await other.call_tool("workflow", {"workflow_id": paused["run_id"], "action": "continue",
                                                       "approved": True})
            listed = (await other.call_tool("cap_list", {})).structured_content
        async with mcp_client(base, alice) as client:
            aborted = await client.call_tool("workflow", {"workflow_id": paused["run_id"], "action": "abort"})
    owners = sql(database_url, "SELECT u.username, count(*) FROM workflow_execution e JOIN users u "
                               "ON u.id::text = e.owner WHERE e.code_snippet IS NOT NULL GROUP BY 1 ORDER BY 1")
    assert not own.is_error and (own.structured_content or {})["result"] == "mine", text_of(own)
    assert stolen.is_error and "neither a known tool nor a capability" in text_of(stolen)
    assert paused["status"] == "approval_required"
    assert steer.is_error and "no code run" in text_of(steer) and listed["total"] == 0
    assert aborted.is_error and (aborted.structured_content or {})["error"]["kind"] == "Aborted"
    assert owners == [("alice", 4), ("carol", 1)]  # each run recorded as its user's
