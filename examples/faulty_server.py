"""A deliberately misbehaving MCP stdio server, for testing the gateway's downstream supervision.

Run it as ``python examples/faulty_server.py``. Its tools echo, sleep, add, count the calls this process
served, report progress step by step, ask the user a question, write MCP log messages, crash the process,
hang until cancelled (counting the cancellations), and register new tools at run time (announcing them with
``notifications/tools/list_changed``). With ``FAULTY_FAIL_AT_START`` set it writes that text to stderr and
exits before the MCP handshake, like a server with a missing API key.
"""

from __future__ import annotations

import os
import sys
import warnings

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.shared.exceptions import MCPError
from mcp_types import ToolAnnotations
from pydantic import BaseModel

server = MCPServer("faulty", instructions="A test server that crashes, hangs and adds tools on demand.")
_served = 0
_cancelled = 0


def _count() -> int:
    global _served
    _served += 1
    return _served


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def echo(text: str) -> str:
    """Return `text` unchanged."""
    _count()
    return text


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def sleep(ms: int) -> str:
    """Wait `ms` milliseconds, then answer."""
    _count()
    await anyio.sleep(ms / 1000)
    return f"slept {ms} ms"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def add(a: float, b: float) -> float:
    """Add two numbers."""
    _count()
    return a + b


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def count_calls() -> int:
    """How many tool calls this process has served, this one included (1 in a fresh process)."""
    return _count()


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def steps(count: int, ms: int, ctx: Context) -> str:
    """Work through `count` steps of `ms` milliseconds, reporting progress after each (if the caller asked)."""
    _count()
    for step in range(1, count + 1):
        await anyio.sleep(ms / 1000)
        await ctx.report_progress(step, count, f"step {step} of {count}")
    return f"{count} steps done"


class Answer(BaseModel):
    answer: str


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def ask(question: str, ctx: Context) -> str:
    """Ask the user `question` (``elicitation/create``) and return what came back."""
    _count()
    try:
        reply = await ctx.elicit(question, Answer)
    except MCPError as exc:
        return f"not asked: {exc.error.message}"
    if reply.action == "accept":
        return f"answer: {reply.data.answer}"
    return reply.action


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def log(level: str, data: str, ctx: Context) -> str:
    """Send `data` to the client as an MCP log message (`notifications/message`) at `level` ("info", "error"...)."""
    _count()
    with warnings.catch_warnings():  # the logging capability is deprecated from 2026-07-28 on; older clients use it
        warnings.simplefilter("ignore")
        await ctx.log(level, data, logger_name="faulty.tools")  # type: ignore[arg-type]
    return f"logged at {level}"


@server.tool(annotations=ToolAnnotations(destructive_hint=True))
def crash() -> str:
    """Exit the server process at once with status 1, without answering."""
    os._exit(1)


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
async def hang() -> str:
    """Never answer (until the call is cancelled)."""
    global _cancelled
    _count()
    try:
        await anyio.sleep_forever()
    finally:  # only a cancellation gets here
        _cancelled += 1
    return "unreachable"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def count_cancelled() -> int:
    """How many `hang` calls this process saw cancelled."""
    return _cancelled


@server.tool()
async def add_tool(name: str, ctx: Context) -> str:
    """Register a tool called `name` (it returns its own name) and tell the client the tool list changed."""
    _count()

    def added() -> str:
        return name

    server.add_tool(added, name=name, description=f"A tool added at run time; returns {name!r}.")
    await ctx.session.send_tool_list_changed()
    return f"added {name}"


def main() -> None:
    """Serve over stdio, or fail at start when FAULTY_FAIL_AT_START asks for it."""
    reason = os.environ.get("FAULTY_FAIL_AT_START")
    if reason:
        sys.stderr.write(f"faulty_server: {reason}\n")
        sys.stderr.flush()
        sys.exit(3)
    server.run("stdio")


if __name__ == "__main__":
    main()
