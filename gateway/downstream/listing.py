"""A downstream server's tools: listed across every page, converted to the gateway's `ToolDef`."""

from __future__ import annotations

import logging

import mcp_types as types
from mcp.client import ClientSession
from mcp.shared.exceptions import MCPError

from gateway.models import ToolDef

logger = logging.getLogger(__name__)

MAX_LIST_PAGES = 1000
"""A server still handing out cursors after this many pages is cut off (a loop, not a catalogue)."""


async def list_tools(session: ClientSession, server: str) -> list[ToolDef]:
    """Every tool the server lists, following ``nextCursor``; none if it does not know ``tools/list``."""
    try:
        return await _list_pages(session, server)
    except MCPError as exc:
        if exc.code != types.METHOD_NOT_FOUND:
            raise
        logger.info("server %r does not list tools (%s)", server, exc.message)
        return []


async def _list_pages(session: ClientSession, server: str) -> list[ToolDef]:
    tools: dict[str, ToolDef] = {}
    cursor: str | None = None
    seen: set[str] = set()
    for _ in range(MAX_LIST_PAGES):
        params = types.PaginatedRequestParams(cursor=cursor) if cursor is not None else None
        page = await session.list_tools(params=params)
        for tool in page.tools:
            tools.setdefault(tool.name, to_tool_def(server, tool))
        cursor = page.next_cursor
        if cursor is None or cursor in seen:
            return list(tools.values())
        seen.add(cursor)
    logger.warning("server %r: stopped listing tools after %d pages", server, MAX_LIST_PAGES)
    return list(tools.values())


def to_tool_def(server: str, tool: types.Tool) -> ToolDef:
    """The gateway's plain-dict copy of an MCP tool definition."""
    annotations = None
    if tool.annotations is not None:
        annotations = tool.annotations.model_dump(by_alias=True, exclude_none=True, mode="json")
    return ToolDef(
        server=server,
        name=tool.name,
        description=tool.description or "",
        input_schema=dict(tool.input_schema),
        output_schema=dict(tool.output_schema) if tool.output_schema is not None else None,
        annotations=annotations or None,
        title=tool.title,
    )
