"""Who is asking: the user behind the current MCP request (HTTP), or nobody in particular (stdio)."""

from __future__ import annotations

from mcp.server.auth.middleware.auth_context import get_access_token

from gateway.services.auth import ADMIN_ROLE


def gateway_user() -> str | None:
    """The user id of the API key behind the current MCP request; None on stdio (one local user)."""
    token = get_access_token()
    return token.client_id if token is not None else None


def sees_server_details() -> bool:
    """Whether the asker may read what a failing server said (its reason, its secrets already redacted): stdio's
    one user, who runs the gateway, and HTTP admins. Other users read that it failed, and where to look."""
    token = get_access_token()
    return token is None or ADMIN_ROLE in token.scopes
