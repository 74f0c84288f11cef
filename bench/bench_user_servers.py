"""A user's own server on first use: what the gateway adds to the server's own start, over HTTP.

Run: ``python bench/bench_user_servers.py [--rounds N]``.
Per round: a fresh user whose own server (`examples/notes_server.py`, added by `user-servers add`, one secret
in its env) has never run; the first `call_tool @notes:list_notes` over HTTP (start, initialize, list, call),
then a warm one. Beside it, the server's own start as a client sees it: the SDK client spawning the same
command, initialize, tools/list and the same call, then a warm call. The gateway's addition is first-use
minus warm minus the server's own start (minus its warm call). Goal (issue 22): under 1 s. Medians over rounds;
results to ``bench/results/user_servers.json``.
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
from _common import ROOT, clean_env, gateway_command, machine, postgres_on, servers_file, stdio_session, table
from _common import write_results as write
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client

NOTES = [sys.executable, str(ROOT / "examples" / "notes_server.py")]
_KEY = re.compile(r"\bac_[A-Za-z0-9_-]{20,}")
_SERVING = re.compile(r"serving MCP at (http://\S+)/mcp")


def cli(env: dict[str, str], *args: str, stdin: str = "") -> str:
    done = subprocess.run(gateway_command(*args), input=stdin, capture_output=True, text=True, env=env, cwd=ROOT,
                          timeout=120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"pml-gateway {' '.join(args)} failed: {done.stderr[-1500:]}")
    return done.stdout


async def own_start_ms(tmp: Path) -> tuple[float, float]:
    """The server's own start (spawn, initialize, list, one call) and a warm call, as the SDK client sees them."""
    env = clean_env(NOTES_FILE=str(tmp / "direct.json"))
    began = time.perf_counter()
    async with stdio_session(NOTES, errlog=tmp / "direct.log", env=env) as client:
        await client.list_tools()
        await client.call_tool("list_notes", {})
        first = (time.perf_counter() - began) * 1000
        began = time.perf_counter()
        await client.call_tool("list_notes", {})
        warm = (time.perf_counter() - began) * 1000
    return first, warm


async def first_use_ms(base: str, key: str) -> tuple[float, float]:
    http = create_mcp_http_client(headers={"Authorization": f"Bearer {key}"})
    async with http, Client(streamable_http_client(f"{base}/mcp", http_client=http), read_timeout_seconds=60) as c:
        await c.call_tool("search_tools", {"query": "warm up"})  # the handshake and index, not the user's server
        began = time.perf_counter()
        first = await c.call_tool("call_tool", {"tool": "@notes:list_notes", "arguments": {}})
        first_ms = (time.perf_counter() - began) * 1000
        began = time.perf_counter()
        await c.call_tool("call_tool", {"tool": "@notes:list_notes", "arguments": {}})
        warm_ms = (time.perf_counter() - began) * 1000
    assert not first.is_error, first
    return first_ms, warm_ms


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory(prefix="pml-bench-users-") as name:
        tmp = Path(name)
        env = clean_env(PML_DATA_DIR=str(tmp / "data"), PML_MASTER_KEY_FILE=str(tmp / "master.key"),
                        PML_LOG_LEVEL="INFO")
        config = servers_file(tmp / "servers.json", {})
        log = tmp / "gateway.log"
        with log.open("wb") as sink:
            gateway = subprocess.Popen(gateway_command("serve", "--config", str(config), "--http", "127.0.0.1:0"),
                                       env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=sink)
        try:
            with anyio.fail_after(120):
                while not (found := _SERVING.search(log.read_text(errors="replace"))) or "index ready" not in \
                        log.read_text(errors="replace"):
                    await anyio.sleep(0.1)
            base = found.group(1)
            for n in range(args.rounds):
                user = f"user{n}"
                key = _KEY.search(cli(env, "users", "add", user))
                assert key is not None
                cli(env, "secrets", "set", user, "TOKEN", stdin=f"token-of-{user}-0123456789")
                entry = {"command": NOTES[0], "args": NOTES[1:], "env": {"NOTES_FILE": str(tmp / f"{user}.json"),
                                                                          "NOTES_TOKEN": "${secret:TOKEN}"}}
                cli(env, "user-servers", "add", user, "notes", stdin=json.dumps(entry))
                own_first, own_warm = await own_start_ms(tmp)
                first, warm = await first_use_ms(base, key.group(0))
                rows.append({"own_start_ms": own_first, "own_warm_ms": own_warm, "first_use_ms": first,
                             "warm_ms": warm, "added_ms": (first - warm) - (own_first - own_warm)})
        finally:
            gateway.send_signal(signal.SIGTERM)
            gateway.wait(timeout=60)
            assert not postgres_on(tmp / "data"), "the gateway's Postgres outlived it"
    medians = {k: statistics.median(r[k] for r in rows) for k in rows[0]}
    print(table(["measure", "median ms", "min", "max"],
                [[k, f"{medians[k]:.1f}", f"{min(r[k] for r in rows):.1f}", f"{max(r[k] for r in rows):.1f}"]
                 for k in rows[0]]))
    print(f"the gateway adds {medians['added_ms']:.0f} ms to the server's own start on first use (goal: < 1000)")
    write("user_servers", {"machine": machine(), "rounds": rows, "medians": medians})


if __name__ == "__main__":
    anyio.run(main)
