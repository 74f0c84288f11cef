"""An MCP stdio server that misbehaves on request, for the fault-injection suite (tests/faults).

Its tools write raw bytes on the MCP wire, answer with huge or NUL-laden results, write raw bytes and secrets
to stderr, and record side effects in a file (to tell a task run once from a task run twice). With
``HOSTILE_FAIL_AT_START`` set it writes that text to stderr and exits before the handshake; with
``HOSTILE_START_GATE`` (a path) it answers nothing until that file exists (a start as slow as a test wants).
"""

from __future__ import annotations

import os
import sys
import time

import anyio
from mcp.server.mcpserver import MCPServer

_WIRE = os.dup(1)  # the MCP output itself: serving stdio points fd 1 at stderr
server = MCPServer("hostile", instructions="A test server that misbehaves on request.")


@server.tool()
def echo(text: str) -> str:
    """Return `text` unchanged."""
    return text


@server.tool()
def garble(data_hex: str = "00ff2062696e6172790a") -> str:
    """Write the bytes `data_hex` onto the MCP output (by default NUL, 0xff, " binary", newline), then answer."""
    os.write(_WIRE, bytes.fromhex(data_hex))
    return "garbled"


@server.tool()
def big(size: int) -> str:
    """Answer a text of `size` characters."""
    return "x" * size


@server.tool()
def nul(text: str = "before\x00after") -> str:
    """Answer `text`, which by default holds a NUL character."""
    return text


@server.tool()
def stderr(data_hex: str) -> str:
    """Write the bytes `data_hex` to stderr, then answer."""
    os.write(2, bytes.fromhex(data_hex))
    return "written"


@server.tool()
async def mark(label: str, ms: int = 0) -> str:
    """Wait `ms` milliseconds, then append `label` to the file HOSTILE_MARKS (a side effect to count)."""
    await anyio.sleep(ms / 1000)
    with open(os.environ["HOSTILE_MARKS"], "a") as marks:  # noqa: ASYNC230 - one short line
        marks.write(label + "\n")
    return label


def main() -> None:
    """Serve over stdio, or fail at start when HOSTILE_FAIL_AT_START asks for it."""
    reason = os.environ.get("HOSTILE_FAIL_AT_START")
    if reason:
        sys.stderr.write(f"hostile_server: {reason}\n")
        sys.stderr.flush()
        sys.exit(3)
    gate = os.environ.get("HOSTILE_START_GATE")
    while gate and not os.path.exists(gate):
        time.sleep(0.05)
    server.run("stdio")


if __name__ == "__main__":
    main()
