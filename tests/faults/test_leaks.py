"""What a downstream server or another user must not learn through the gateway: a server's secrets (in its start
line, its stderr, its failure reason), raw control bytes in the log, another user's private workflows."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import psycopg
import pytest

from gateway.config import GatewayConfig, load_config
from gateway.db import CapabilityStore, Pool
from gateway.db.memory import IntentMemory
from gateway.graph import Edge, build_graph
from gateway.models import ServerState
from gateway.services.capabilities import labelled_view
from gateway.services.suggest import NO_SUGGESTION_BELOW
from tests.downstream.support import ROOT, SETTLE_S, supervising, text_of
from tests.e2e.support import text_of as texts_of
from tests.e2e.test_gateway import indexed, run_cli  # noqa: F401 - the fixture
from tests.e2e.test_http import base_url, http_gateway, mcp_client
from tests.e2e.test_shared_memory import until_related
from tests.e2e.test_workflows import run_dag
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

HOSTILE = str(Path(__file__).with_name("hostile_server.py"))
TOKEN = "tok-5f3a9c1e77d2"
KEY = "key-0b8e44f2a6c9"
ENVIRON = {"LEAK_TOKEN": TOKEN, "LEAK_KEY": KEY}
WITHHELD = "failed to start (details in the gateway's log)"
_KEY = re.compile(r"\bac_[A-Za-z0-9_-]{20,}")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def config_of(tmp_path: Path, servers: dict[str, Any], name: str = "servers.json") -> GatewayConfig:
    path = tmp_path / name
    path.write_text(json.dumps({"mcpServers": servers}))
    return load_config(path, ENVIRON)


def hostile(*args: str, **env: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": [HOSTILE, *args], "env": env}


class Stderr:
    """Everything written to our stderr so far (capsys hands each piece out once)."""

    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self._seen: list[str] = []

    def text(self) -> str:
        self._seen.append(self._capsys.readouterr().err)
        return "".join(self._seen)

    async def line(self, prefix: str) -> str:
        """The first line of our stderr that starts with `prefix`, once it is written."""

        def found() -> str | None:
            return next((line for line in self.text().split("\n") if line.startswith(prefix)), None)

        line: str = await eventually(found, timeout_s=SETTLE_S, interval_s=0.02, what=f"a line {prefix!r}")
        return line


# Defect 12: secrets expanded into args, url or headers were logged in the "starting server" line.

async def test_the_starting_server_line_shows_no_secret_expanded_into_args_url_or_headers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = config_of(tmp_path, {
        "hostile": hostile("--token=${LEAK_TOKEN}", API_KEY="${LEAK_KEY}"),
        "remote": {"url": "http://127.0.0.1:9/mcp?key=${LEAK_KEY}",
                   "headers": {"Authorization": "Bearer ${LEAK_TOKEN}"}},
    })
    caplog.set_level("INFO", logger="gateway")
    async with supervising(*config.servers, restart_base_s=60.0) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
    starting = sorted(r.getMessage() for r in caplog.records if r.getMessage().startswith("starting server"))
    assert starting == [
        f"starting server 'hostile': {sys.executable} {HOSTILE} --token=*** (env: API_KEY)",
        "starting server 'remote': http://127.0.0.1:9/mcp?key=*** (headers: Authorization)",
    ]
    assert TOKEN not in caplog.text and KEY not in caplog.text


# Defect 12: a server's raw NUL and 0xff bytes on stderr were copied into the log as they were.

async def test_raw_control_and_undecodable_bytes_from_a_servers_stderr_reach_the_log_escaped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stderr = Stderr(capsys)
    config = config_of(tmp_path, {"hostile": hostile()})
    async with supervising(*config.servers) as (supervisor, recorder):
        await recorder.wait_for(lambda: ServerState.RUNNING in recorder.states("hostile"))
        raw = b"nul\x00 ff\xff esc\x1b[31m bell\x07 tab\t cr\r del\x7f end\n"
        assert text_of(await supervisor.call_tool("hostile", "stderr", {"data_hex": raw.hex()})) == "written"
        line = await stderr.line("[hostile] nul")
    assert line == r"[hostile] nul\x00 ff\xff esc\x1b[31m bell\x07 tab\t cr\r del\x7f end"
    assert _CONTROL.search(stderr.text()) is None


# Defect 7 (the log and the reason): a server that prints its secret had it copied into the log and its reason.

async def test_a_servers_secrets_are_redacted_from_its_stderr_lines_and_its_failure_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    stderr = Stderr(capsys)
    caplog.set_level("DEBUG", logger="gateway")
    config = config_of(tmp_path, {
        "dying": hostile(HOSTILE_FAIL_AT_START="bad token ${LEAK_TOKEN}"),
        "chatty": hostile("--key=${LEAK_KEY}", HOSTILE_TOKEN="${LEAK_TOKEN}"),
    })
    async with supervising(*config.servers, restart_base_s=60.0) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        said = f"using token {TOKEN} and key {KEY} now\n".encode()
        assert text_of(await supervisor.call_tool("chatty", "stderr", {"data_hex": said.hex()})) == "written"
        chatty = await stderr.line("[chatty] using")
        dying = next(s for s in supervisor.statuses() if s.name == "dying")
    assert (dying.state, dying.reason) == (ServerState.FAILED, "exited during initialize: hostile_server: ***")
    assert chatty == "[chatty] using token *** and key *** now"
    assert "[dying] hostile_server: ***" in stderr.text()
    assert "server 'dying' failed to start: exited during initialize: hostile_server: ***" in caplog.text
    assert TOKEN not in stderr.text() + caplog.text and KEY not in stderr.text() + caplog.text


async def test_a_servers_secrets_are_redacted_from_its_mcp_log_messages(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="gateway")
    config = config_of(tmp_path, {"logger": {
        "command": sys.executable, "args": [str(ROOT / "examples/faulty_server.py"), "--token=${LEAK_TOKEN}"]}})
    async with supervising(*config.servers) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        said = f"auth with {TOKEN}\x00done"
        logged = await supervisor.call_tool("logger", "log", {"level": "error", "data": said})
        assert text_of(logged) == "logged at error"
        line = await eventually(lambda: next((r.getMessage() for r in caplog.records if "auth with" in r.getMessage()),
                                             None), timeout_s=SETTLE_S, interval_s=0.02, what="the log message")
    assert line == "[logger/faulty.tools] auth with ***\\x00done"


# Defect 13: a private workflow's tools were suggested to another user's `execute_dag {intent}`.

def new_key(database_url: str, name: str, role: str = "user") -> str:
    done = run_cli("users", "add", name, "--role", role, "--database-url", database_url)
    assert done.returncode == 0, done.stderr[-2000:]
    match = _KEY.search(done.stdout)
    assert match is not None, done.stdout
    return match.group(0)


INTENT = "prepare the quarterly board summary"
ADD_THEN_ECHO = [
    {"id": "sum", "tool": "faulty:add", "arguments": {"a": 1, "b": 2}},
    {"id": "say", "tool": "faulty:echo", "arguments": {"text": "sum is $OUTPUT[sum].result"}, "depends_on": ["sum"]},
]


def remembered(database_url: str) -> bool:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM workflow_intent WHERE intent = %s", (INTENT,)).fetchone() is not None


async def test_one_users_private_workflow_is_not_suggested_to_another_user(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    alice, carol = new_key(database_url, "alice"), new_key(database_url, "carol")
    log = tmp_path / "gateway.log"
    with http_gateway(indexed, database_url, log):
        base = await base_url(log)
        async with mcp_client(base, alice) as client:
            assert (await run_dag(client, ADD_THEN_ECHO, intent=INTENT))["status"] == "completed"
        await eventually(lambda: remembered(database_url), timeout_s=20, what="the intent remembered")
        async with mcp_client(base, carol) as other:
            await until_related(other, "faulty:add", "faulty:echo")  # the graph's edge is shared learning
            suggested = (await other.call_tool("execute_dag", {"intent": INTENT})).structured_content
    assert suggested is not None and suggested["suggested_dag"] is None, suggested  # was add -> echo, at 0.99
    assert suggested["confidence"] < NO_SUGGESTION_BELOW


async def test_a_remembered_intent_is_recalled_by_its_maker_and_by_others_once_they_share_its_tools(
    pool: Pool,
) -> None:
    memory, capabilities = IntentMemory(pool), CapabilityStore(pool)
    vector = np.zeros(384, dtype=np.float32)
    vector[7] = 1.0
    tools = ["faulty:add", "faulty:echo"]
    await memory.remember(intent=INTENT, embedding=vector, model_id="m", tools=tools,
                          edges=[("faulty:add", "faulty:echo")], success=True, owner="alice")

    async def recalled_by(user: str | None) -> list[str]:
        return [m.intent for m in await memory.recall(vector, model_id="m", limit=5, user=user)]

    before = {user: await recalled_by(user) for user in ("alice", "carol", None)}
    row = await capabilities.record(
        pattern_hash="f" * 64, document={"tasks": [{"id": "t1", "tool": "faulty:add"}]}, tools=tools,
        parameters_schema={"type": "object"}, embedding=vector, success=True, duration_ms=1.0, namespace="board",
        action="summary", alternatives=[], cacheable=False, created_by="alice")
    assert row is not None
    private = await recalled_by("carol")
    await capabilities.rename(row.id, namespace=row.namespace, action=row.action, visibility="public")
    shared = await recalled_by("carol")
    assert before == {"alice": [INTENT], "carol": [], None: [INTENT]}
    assert (private, shared) == ([], [INTENT])


# Defect 7 (over HTTP): a failing server's last stderr line reached every user, its token with it.

def stored_reasons(database_url: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        return conn.execute("SELECT server_id, reason FROM server_status ORDER BY server_id").fetchall()


async def test_over_http_a_failing_servers_words_reach_admins_redacted_and_other_users_not_at_all(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAK_TOKEN", TOKEN)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"mcpServers": {"hostile": hostile()}}))
    done = run_cli("index", "--config", str(good), "--database-url", database_url)  # its tools are known
    assert done.returncode == 0, done.stderr[-3000:]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"mcpServers": {"hostile": hostile(HOSTILE_FAIL_AT_START="bad token ${LEAK_TOKEN}")}}))
    alice, root = new_key(database_url, "alice"), new_key(database_url, "root", "admin")
    log = tmp_path / "gateway.log"
    with http_gateway(bad, database_url, log):
        base = await base_url(log)
        async with mcp_client(base, alice) as user, mcp_client(base, root) as admin:

            async def failed_once() -> list[dict[str, Any]] | None:
                found = (await admin.call_tool("search_tools", {"query": "echo a text"})).structured_content
                down: list[dict[str, Any]] = found["unavailable_servers"]
                return down if down and down[0]["reason"] else None

            await eventually(failed_once, timeout_s=60, interval_s=0.1, what="hostile failed to start")
            seen = {who: await client.call_tool("search_tools", {"query": "echo a text"})
                    for who, client in (("user", user), ("admin", admin))}
            called = {who: await client.call_tool("call_tool", {"tool": "hostile:echo", "arguments": {"text": "x"}})
                      for who, client in (("user", user), ("admin", admin))}
            two = [{"id": "a", "tool": "hostile:echo", "arguments": {"text": "x"}},
                   {"id": "b", "tool": "hostile:echo", "arguments": {"text": "y"}, "depends_on": ["a"]}]
            ran = {who: await client.call_tool("execute_dag", {"tasks": two})
                   for who, client in (("user", user), ("admin", admin))}
    reasons = {who: [d["reason"] for d in r.structured_content["unavailable_servers"]] for who, r in seen.items()}
    assert reasons == {"user": [WITHHELD], "admin": ["exited during initialize: hostile_server: ***"]}
    assert texts_of(called["user"]) == "server 'hostile' is unavailable (details in the gateway's log)"
    assert texts_of(called["admin"]) == (
        "server 'hostile' failed to start: exited during initialize: hostile_server: ***")
    errors = {who: r.structured_content["tasks"]["a"]["error"] for who, r in ran.items()}
    assert "hostile_server" not in errors["user"] and "(details in the gateway's log)" in errors["user"]
    assert "exited during initialize: hostile_server: ***" in errors["admin"]
    assert stored_reasons(database_url) == [("hostile", "exited during initialize: hostile_server: ***")]
    answers = [*seen.values(), *called.values(), *ran.values()]
    everything = log.read_text(errors="replace") + "".join(texts_of(r) for r in answers)
    assert "[hostile] hostile_server: ***" in everything and TOKEN not in everything


async def test_the_graph_page_names_only_the_capabilities_its_viewer_may_see(capability_store: CapabilityStore) -> None:
    digest = "f" * 64
    mine = await capability_store.record(
        pattern_hash=digest, document={"tasks": [{"id": "t1", "tool": "fs:read"}]}, tools=["fs:read", "fs:write"],
        parameters_schema={"type": "object"}, embedding=np.eye(384, dtype=np.float32)[0], success=True,
        duration_ms=1.0, namespace="board", action="quarterly_summary", alternatives=[], cacheable=False,
        created_by="alice")
    assert mine is not None
    graph = build_graph([], [Edge(mine.node_id, "fs:read", "contains", "observed")])
    limiter = anyio.CapacityLimiter(1)
    seen = {user: {n.id: n.label for n in (await labelled_view(graph, capability_store, limiter, user=user)).nodes}
            for user in ("alice", "carol", None)}
    assert seen["alice"][mine.node_id] == seen[None][mine.node_id] == "board:quarterly_summary"
    assert seen["carol"][mine.node_id] == mine.node_id  # an id, not what alice called it
