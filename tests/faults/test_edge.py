"""Edge-of-the-wire requests (issue 18): what cannot be parsed, what is too large, and a foreign Host header, each
answered by a real gateway and followed by a request that still works."""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from anyio.abc import Process
from anyio.streams.buffered import BufferedByteReceiveStream

from gateway.server.stdio import MAX_MESSAGE_BYTES
from tests.e2e.support import ROOT, gateway_command, gateway_env
from tests.e2e.test_http import base_url, http_gateway, new_key

pytestmark = pytest.mark.anyio

START_S = 60.0
"""How long the answer to `initialize` may take: the gateway starting on a loaded machine."""
ANSWER_S = 15.0
"""How long any later answer may take (an unanswered request would otherwise wait forever)."""
PARSE_ERROR, INVALID_REQUEST = -32700, -32600
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "edge", "version": "0"}}}


class RawWire:
    """The gateway's stdin and stdout as bytes: what the SDK's client would never send."""

    def __init__(self, process: Process) -> None:
        assert process.stdin is not None and process.stdout is not None
        self._process = process
        self._stdin = process.stdin
        self._stdout = BufferedByteReceiveStream(process.stdout)

    async def send(self, line: bytes) -> None:
        await self._stdin.send(line + b"\n")

    async def request(self, message: dict[str, Any]) -> None:
        await self.send(json.dumps(message).encode())

    async def answer(self, timeout_s: float = ANSWER_S) -> dict[str, Any]:
        """The next response or error on stdout (notifications and the gateway's own requests are skipped)."""
        with anyio.move_on_after(timeout_s):
            while True:
                try:
                    line = await self._stdout.receive_until(b"\n", 1024 * 1024)
                except (anyio.EndOfStream, anyio.IncompleteRead):
                    raise AssertionError(f"the gateway closed stdout (exit {await self._process.wait()})") from None
                message: dict[str, Any] = json.loads(line)
                if "method" not in message:
                    return message
        raise AssertionError(f"no answer on the gateway's stdout within {timeout_s} s")

    async def ping(self, request_id: int) -> dict[str, Any]:
        await self.request({"jsonrpc": "2.0", "id": request_id, "method": "ping"})
        return await self.answer()


@asynccontextmanager
async def stdio_gateway(tmp_path: Path, database_url: str) -> AsyncIterator[RawWire]:
    """`serve` over stdio with no downstream server, initialized; its stderr goes to ``gateway.log``."""
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {}}))
    command = gateway_command("serve", "--config", str(config), "--database-url", database_url)
    with (tmp_path / "gateway.log").open("wb") as log:
        process = await anyio.open_process(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                                           cwd=ROOT, env=gateway_env())
    async with process:
        wire = RawWire(process)
        await wire.request(INITIALIZE)
        assert "result" in await wire.answer(START_S)
        await wire.request({"jsonrpc": "2.0", "method": "notifications/initialized"})
        yield wire


def nested(depth: int) -> bytes:
    """A ping whose params hold a list nested `depth` deep."""
    return b'{"jsonrpc":"2.0","id":8,"method":"ping","params":{"a":' + b"[" * depth + b"]" * depth + b"}}"


async def test_a_lone_surrogate_in_a_request_is_refused_with_its_id_and_the_next_request_is_answered(
    tmp_path: Path, database_url: str
) -> None:
    line = b'{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search_tools",' \
           b'"arguments":{"query":"\\ud800"}}}'
    async with stdio_gateway(tmp_path, database_url) as wire:
        await wire.send(line)
        refused = await wire.answer()
        pong = await wire.ping(9)
    assert refused["id"] == 7 and refused["error"]["code"] == INVALID_REQUEST
    assert refused["error"]["message"].startswith("Invalid request: ") and "hex escape" in refused["error"]["message"]
    assert pong == {"jsonrpc": "2.0", "id": 9, "result": {}}
    assert "refused a message on stdin" in (tmp_path / "gateway.log").read_text()


@pytest.mark.parametrize("depth", [5_000, 100_000])
async def test_json_nested_thousands_deep_is_a_parse_error_and_the_next_request_is_answered(
    tmp_path: Path, database_url: str, depth: int
) -> None:
    async with stdio_gateway(tmp_path, database_url) as wire:
        await wire.send(nested(depth))
        refused = await wire.answer()
        pong = await wire.ping(9)
    assert refused["id"] is None and refused["error"]["code"] == PARSE_ERROR
    assert refused["error"]["message"].startswith("Parse error: ") and "recursion" in refused["error"]["message"]
    assert pong == {"jsonrpc": "2.0", "id": 9, "result": {}}
    assert "refused a message on stdin" in (tmp_path / "gateway.log").read_text()


@pytest.mark.timeout(300)  # 64 MB through a pipe on a loaded machine: twice hit the default 120 s in CI runs
async def test_a_message_over_the_size_limit_is_refused_with_its_id_and_the_gateway_keeps_serving(
    tmp_path: Path, database_url: str
) -> None:
    head = b'{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"search_tools","arguments":{"query":"'
    huge = head + b"a" * MAX_MESSAGE_BYTES + b'"}}}'
    ping = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "ping"}).encode()
    async with stdio_gateway(tmp_path, database_url) as wire:
        await wire.send(huge + b"\n" + ping)  # the next message in the same write: only the huge line goes
        refused = await wire.answer(START_S)
        pong = await wire.answer()
        again = await wire.ping(10)
    assert refused["id"] == 5 and refused["error"]["code"] == INVALID_REQUEST
    assert refused["error"]["message"] == f"Invalid request: a message may be at most {MAX_MESSAGE_BYTES} bytes"
    assert pong == {"jsonrpc": "2.0", "id": 9, "result": {}}
    assert again == {"jsonrpc": "2.0", "id": 10, "result": {}}
    assert "refused a message on stdin" in (tmp_path / "gateway.log").read_text()


async def test_metrics_and_graph_refuse_a_foreign_host_header_as_mcp_does_and_serve_a_local_one(
    tmp_path: Path, database_url: str
) -> None:
    config = tmp_path / "servers.json"
    config.write_text(json.dumps({"mcpServers": {}}))
    key = new_key(database_url, "alice")
    auth = {"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"}
    ping = {"jsonrpc": "2.0", "id": 1, "method": "ping"}
    with http_gateway(config, database_url, tmp_path / "gateway.log"):
        base = await base_url(tmp_path / "gateway.log")
        async with httpx2.AsyncClient(timeout=30) as http:
            foreign = [await http.post(f"{base}/mcp", json=ping, headers={**auth, "Host": "evil.example"}),
                       await http.get(f"{base}/metrics", headers={**auth, "Host": "evil.example"}),
                       await http.get(f"{base}/graph", headers={**auth, "Host": "evil.example:80"})]
            local = [await http.get(f"{base}/metrics", headers=auth),
                     await http.get(f"{base}/graph", headers={**auth, "Host": "localhost"})]
    assert [r.status_code for r in foreign] == [421, 421, 421]
    assert {r.text for r in foreign} == {"Invalid Host header"}
    assert [r.status_code for r in local] == [200, 200]
    assert local[0].headers["content-type"].startswith("text/plain") and "<html" in local[1].text.lower()
