"""A downstream `CallToolResult` reduced to the `ToolOutput` a workflow passes along."""

from __future__ import annotations

import mcp_types as types

from gateway.models import ToolOutput


def to_output(result: types.CallToolResult) -> ToolOutput:
    """Error flag, the text blocks joined by newlines, and the structured content as is."""
    text = "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
    return ToolOutput(is_error=result.is_error, text=text, structured=result.structured_content)
