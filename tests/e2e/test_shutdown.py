"""How the gateway leaves: what finished is learned before it goes, and a signal ends it promptly however its
stdin is connected (a pipe held open by the client, a terminal)."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import IO, Any

import anyio
import psycopg
import pytest

from tests.e2e.support import ROOT, gateway_command, gateway_env
from tests.e2e.test_gateway import indexed, run_cli  # noqa: F401 - the fixture
from tests.eventually import eventually

EXIT_S = 2.0
"""A supervisor's patience: SIGTERM or SIGINT must end the gateway within this."""
ANSWER_S = 60.0


@contextmanager
def raw_gateway(
    config: Path, database_url: str, log: Path, *, stdin: int | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """`serve` as a client spawns it, its stdin a pipe (or the given descriptor), its stderr to `log`."""
    command = gateway_command("serve", "--config", str(config), "--database-url", database_url)
    with log.open("wb") as sink:
        process = subprocess.Popen(command, env=gateway_env(), cwd=ROOT, stdout=subprocess.PIPE, stderr=sink,
                                   stdin=subprocess.PIPE if stdin is None else stdin)
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        for pipe in (process.stdin, process.stdout):
            if pipe is not None:
                pipe.close()


def send(process: subprocess.Popen[bytes], message: dict[str, Any]) -> None:
    assert process.stdin is not None
    process.stdin.write(json.dumps({"jsonrpc": "2.0", **message}).encode() + b"\n")
    process.stdin.flush()


def answer(stdout: IO[bytes] | None, request_id: int) -> dict[str, Any]:
    """The response to `request_id` (notifications before it are skipped); a blocking read, bounded by the
    test's timeout."""
    assert stdout is not None
    while line := stdout.readline():
        message: dict[str, Any] = json.loads(line)
        if message.get("id") == request_id:
            return message
    raise AssertionError(f"the gateway closed its stdout before answering request {request_id}")


def initialize(process: subprocess.Popen[bytes]) -> None:
    send(process, {"id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}}})
    assert "result" in answer(process.stdout, 1)
    send(process, {"method": "notifications/initialized"})


def rows(database_url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()  # type: ignore[arg-type]


def test_what_a_workflow_teaches_is_kept_when_the_client_leaves_right_after_it(
    indexed: Path, database_url: str, tmp_path: Path  # noqa: F811
) -> None:
    intent = "note down what time it is in Tokyo"
    tasks = [{"id": "now", "tool": "time:get_current_time", "arguments": {"timezone": "Asia/Tokyo"}},
             {"id": "say", "tool": "faulty:echo", "arguments": {"text": "$OUTPUT[now].datetime"}}]
    with raw_gateway(indexed, database_url, tmp_path / "gateway.log") as process:
        initialize(process)
        send(process, {"id": 2, "method": "tools/call",
                       "params": {"name": "execute_dag", "arguments": {"intent": intent, "tasks": tasks}}})
        done = answer(process.stdout, 2)
        assert process.stdin is not None
        process.stdin.close()  # at once, as Claude Desktop does when it quits
        assert process.wait(timeout=30) == 0
    assert done["result"]["structuredContent"]["status"] == "completed", done
    edges = rows(database_url, "SELECT from_tool_id, to_tool_id FROM tool_dependency")
    intents = rows(database_url, "SELECT intent FROM workflow_intent")
    capabilities = rows(database_url, "SELECT usage_count FROM workflow_pattern")
    assert ("time:get_current_time", "faulty:echo") in edges
    assert (intent,) in intents
    assert capabilities == [(1,)]
    listed = run_cli("caps", "list", "--json", "--database-url", database_url)
    assert json.loads(listed.stdout.splitlines()[-1])["total"] == 1


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
@pytest.mark.parametrize("stdin", ["pipe", "terminal"])
def test_a_signal_ends_the_gateway_promptly_while_its_stdin_stays_open(
    indexed: Path, database_url: str, tmp_path: Path, signum: int, stdin: str  # noqa: F811
) -> None:
    leader, follower = pty.openpty() if stdin == "terminal" else (-1, -1)
    try:
        with raw_gateway(indexed, database_url, tmp_path / "gateway.log",
                         stdin=follower if stdin == "terminal" else None) as process:
            wait_until_serving(tmp_path / "gateway.log")
            started = time.monotonic()
            process.send_signal(signum)
            code = process.wait(timeout=30)
            took = time.monotonic() - started
    finally:
        for fd in (leader, follower):
            if fd >= 0:
                os.close(fd)
    assert took < EXIT_S, f"exited after {took:.2f} s"
    assert code == 0
    assert "received" in (tmp_path / "gateway.log").read_text()


def wait_until_serving(log: Path) -> None:
    """Until the index is open and every server runs (bounded polling: the log is the only sign)."""

    def serving() -> bool:
        text = log.read_text(errors="replace")
        return "index ready" in text and text.count("is running: pid") >= 3

    try:
        anyio.run(partial(eventually, serving, timeout_s=ANSWER_S, interval_s=0.05, what="the gateway serving"))
    except AssertionError as exc:
        raise AssertionError(f"the gateway did not come up: {log.read_text(errors='replace')[-2000:]}") from exc
