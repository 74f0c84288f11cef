"""The smallest proxy the MCP SDK makes: one downstream stdio server re-served over stdio, nothing else.

Run: ``python bench/_passthrough.py COMMAND [ARGS...]``. `tools/list` and `tools/call` are forwarded to the
downstream session as they come (tools under their own names); no routing, no validation, no telemetry, no
database. `bench_proxy.py` runs it beside the gateway so that the gateway's hop is compared with what the SDK's
server and client sessions cost by themselves, in the same run.
"""

from __future__ import annotations

import sys
from typing import Any

import anyio
import mcp_types as types
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server


async def main(command: list[str]) -> None:
    params = StdioServerParameters(command=command[0], args=command[1:])
    async with stdio_client(params) as (read, write), ClientSession(read, write) as downstream:
        await downstream.initialize()

        async def list_tools(ctx: ServerRequestContext[Any],
                             params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
            return await downstream.list_tools()

        async def call_tool(ctx: ServerRequestContext[Any],
                            params: types.CallToolRequestParams) -> types.CallToolResult:
            return await downstream.call_tool(params.name, params.arguments)

        server: Server[Any] = Server("passthrough", on_list_tools=list_tools, on_call_tool=call_tool)
        async with stdio_server() as (server_read, server_write):
            await server.run(server_read, server_write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main, sys.argv[1:])
