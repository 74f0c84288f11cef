"""Each HTTP user's own servers end to end: added by an admin (stdio) or by the user (HTTP only), started on first
use with the user's secret filled in, one instance per user, invisible and uncallable to another user."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
import pytest

from tests.e2e.support import ROOT, gateway_command, gateway_env, servers_file, text_of
from tests.e2e.test_http import base_url, http_gateway, mcp_client, new_key
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

TOKEN = "notes-token-of-alice-0123456789"


def cli(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(gateway_command(*args), input=stdin, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120, check=False)


def notes_processes(gateway_pid: int) -> list[psutil.Process]:
    """Alice's notes server (the shared one, from the servers file, keeps its notes elsewhere)."""
    children = psutil.Process(gateway_pid).children(recursive=True)
    return [p for p in children if p.environ().get("NOTES_FILE", "").endswith("alice-notes.json")]


async def test_a_users_own_server_starts_on_first_use_with_their_secret_and_is_nobody_elses(
    tmp_path: Path, database_url: str
) -> None:
    env = gateway_env(PML_MASTER_KEY_FILE=str(tmp_path / "master.key"))
    alice, bob = new_key(database_url, "alice"), new_key(database_url, "bob")
    assert cli(env, "secrets", "set", "alice", "NOTES_TOKEN", "--database-url", database_url,
               stdin=TOKEN).returncode == 0
    entry = {"command": sys.executable, "args": [str(ROOT / "examples/notes_server.py")],
             "env": {"NOTES_FILE": str(tmp_path / "alice-notes.json"), "NOTES_TOKEN": "${secret:NOTES_TOKEN}"}}
    added = cli(env, "user-servers", "add", "alice", "notes", "--database-url", database_url, stdin=json.dumps(entry))
    assert added.returncode == 0, added.stderr[-2000:]
    listed = cli(env, "user-servers", "list", "alice", "--database-url", database_url).stdout
    assert "${secret:NOTES_TOKEN}" in listed and TOKEN not in listed

    config = servers_file(tmp_path)
    log = tmp_path / "gateway.log"
    with http_gateway(config, database_url, log, env=env) as gateway:
        gateway_pid = gateway.pid
        base = await base_url(log)
        async with mcp_client(base, alice) as client:
            tools = [t.name for t in (await client.list_tools()).tools]
            before = (await client.call_tool("my_servers", {"action": "list"})).structured_content or {}
            assert notes_processes(gateway_pid) == []  # nothing runs before its first use
            wrote = await client.call_tool("call_tool", {"tool": "@notes:write_note",
                                                         "arguments": {"title": "plan", "text": "ship it"}})
            read = await client.call_tool("execute_code", {"code": 'await call("@notes:read_note", {"title": "plan"})'})
            after = (await client.call_tool("my_servers", {"action": "list"})).structured_content or {}
            (process,) = notes_processes(gateway_pid)
            environ = process.environ()
            refused = await client.call_tool("my_servers", {"action": "add", "name": "shell", "server": {
                "command": "bash", "args": ["-c", "id"]}})
            found = (await client.call_tool("search_tools", {"query": "read my note called plan"})
                     ).structured_content or {}
        async with mcp_client(base, bob) as other:
            not_found = (await other.call_tool("search_tools", {"query": "read my note called plan"})
                         ).structured_content or {}
            stolen = await other.call_tool("call_tool", {"tool": "@notes:read_note", "arguments": {"title": "plan"}})
            bobs = (await other.call_tool("my_servers", {"action": "list"})).structured_content or {}
            own = await other.call_tool("my_servers", {"action": "add", "name": "remote", "server": {
                "url": "https://mcp.example.com/mcp", "headers": {"Authorization": "Bearer ${secret:NOTES_TOKEN}"}}})
            bobs_after = (await other.call_tool("my_servers", {"action": "list"})).structured_content or {}
            borrowed = await other.call_tool("call_tool", {"tool": "@remote:anything", "arguments": {}})
        assert len(notes_processes(gateway_pid)) == 1  # bob's calls started no instance of alice's server
        gateway_log = log.read_text(errors="replace")

    assert "my_servers" in tools
    assert before["servers"][0]["name"] == "notes" and before["servers"][0]["running"] is False
    assert not wrote.is_error, text_of(wrote)
    assert not read.is_error and "ship it" in text_of(read), text_of(read)
    (running,) = after["servers"]
    assert running["running"] and "@notes:read_note" in [t["tool_id"] for t in running["tools"]]
    assert environ["NOTES_TOKEN"] == TOKEN and "PML_MASTER_KEY_FILE" not in environ
    assert refused.is_error and "only a server reached over HTTP" in text_of(refused)
    assert stolen.is_error and "notes" in text_of(stolen) and "ship it" not in text_of(stolen)
    assert bobs["servers"] == []
    assert "@notes:read_note" in [t["tool_id"] for t in found["your_tools"]], found.get("your_tools")
    assert "your_tools" not in not_found and "@notes" not in json.dumps(not_found)
    assert not own.is_error, text_of(own)
    assert [s["name"] for s in bobs_after["servers"]] == ["remote"]
    assert borrowed.is_error and "no secret 'NOTES_TOKEN' is set for this user" in text_of(borrowed)  # alice's
    assert TOKEN not in gateway_log


async def test_a_user_server_whose_secret_is_missing_fails_naming_the_secret(tmp_path: Path, database_url: str) -> None:
    env = gateway_env(PML_MASTER_KEY_FILE=str(tmp_path / "master.key"))
    alice = new_key(database_url, "alice")
    entry = {"command": sys.executable, "args": [str(ROOT / "examples/notes_server.py")],
             "env": {"NOTES_TOKEN": "${secret:MISSING_ONE}"}}
    assert cli(env, "user-servers", "add", "alice", "notes", "--database-url", database_url,
               stdin=json.dumps(entry)).returncode == 0
    log = tmp_path / "gateway.log"
    with http_gateway(servers_file(tmp_path), database_url, log, env=env):
        async with mcp_client(await base_url(log), alice) as client:
            failed = await client.call_tool("call_tool", {"tool": "@notes:read_note", "arguments": {"title": "x"}})

            async def still_serving() -> Any:
                return not (await client.call_tool("search_tools", {"query": "read a note"})).is_error

            await eventually(still_serving, timeout_s=30, interval_s=0.2, what="the gateway still serving")
    assert failed.is_error and "MISSING_ONE" in text_of(failed)
