"""Who is asking: the user behind the current MCP request (HTTP), or nobody in particular (stdio)."""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token


def gateway_user() -> str | None:
    """The user id of the API key behind the current MCP request; None on stdio (one local user)."""
    token = get_access_token()
    return token.client_id if token is not None else None
