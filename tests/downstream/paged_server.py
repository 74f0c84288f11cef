"""A low-level MCP stdio server that lists 25 tools four per page, to test that cursors are followed."""

from __future__ import annotations

from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

TOOL_COUNT = 25
PAGE_SIZE = 4


async def list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    start = int(params.cursor) if params is not None and params.cursor else 0
    end = min(start + PAGE_SIZE, TOOL_COUNT)
    tools = [
        types.Tool(name=f"tool_{i:02d}", description=f"Paged tool {i}.", input_schema={"type": "object"})
        for i in range(start, end)
    ]
    return types.ListToolsResult(tools=tools, next_cursor=str(end) if end < TOOL_COUNT else None)


async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=params.name)])


server: Server[Any] = Server("paged", on_list_tools=list_tools, on_call_tool=call_tool)


async def main() -> None:
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


if __name__ == "__main__":
    anyio.run(main)
