"""`my_servers`: an HTTP user's own MCP servers, added, removed and listed with their tools."""

from __future__ import annotations

import json
from typing import Any

import mcp_types as types

from gateway.errors import InvalidRequestError
from gateway.server import meta
from gateway.server.backend import GatewayBackend
from gateway.server.principal import gateway_user, sees_server_details
from gateway.services.user_servers import PREFIX, UserServer

MY_SERVERS = "my_servers"

MY_SERVERS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "action": {"type": "string", "enum": ["list", "add", "remove"]},
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_-]{1,48}$",
                 "description": "The server's name: its tools are called @name:tool."},
        "server": {"type": "object", "description": 'An mcpServers entry: {"url": "https://...", "headers": '
                   '{"Authorization": "Bearer ${secret:NAME}"}}; ${secret:NAME} is your secret NAME.'},
    },
    "required": ["action"],
    "additionalProperties": False,
}

MY_SERVERS_DESCRIPTION = (
    "Your own MCP servers (HTTP users): add one reached over HTTP (secrets as ${secret:NAME}), remove one, or list "
    "them with their tools. Their tools are yours only: call them as @name:tool with call_tool, execute_dag or "
    "execute_code. A server starts on first use and stops when idle."
)

meta.register(MY_SERVERS, MY_SERVERS_SCHEMA)


async def act(backend: GatewayBackend, arguments: dict[str, Any] | None) -> types.CallToolResult:
    args = meta.check_arguments(MY_SERVERS, arguments)
    user = gateway_user()
    if user is None:
        raise InvalidRequestError("my_servers is for users of the HTTP gateway; over stdio, servers are listed in "
                                  "the servers file", field="action")
    service = await backend.user_server_service()
    action, name = args["action"], args.get("name")
    if action == "list":
        return _listed(await service.list(user))
    if name is None:
        raise InvalidRequestError(f"{action} needs the server's name", field="name")
    if action == "remove":
        if not await service.remove(user, name):
            raise InvalidRequestError(f"you have no server {name!r}", field="name")
        return _text(f"removed your server {name}")
    if "server" not in args:
        raise InvalidRequestError('add needs the server\'s entry, e.g. {"url": "https://..."}', field="server")
    await service.add(user, name, args["server"], allow_stdio=sees_server_details())
    return _text(f"added your server {name}: its tools are called {PREFIX}{name}:<tool> and it starts on first use")


def _listed(servers: list[UserServer]) -> types.CallToolResult:
    items = [{"name": s.name, "server": s.entry, "running": s.running,
              "tools": [{"tool_id": f"{PREFIX}{s.name}:{t.name}", "description": t.description,
                         "input_schema": t.input_schema} for t in s.tools]} for s in servers]
    lines = [f"{s.name}: {'running' if s.running else 'stopped'}; tools: "
             f"{', '.join(f'{PREFIX}{s.name}:{t.name}' for t in s.tools) or '(listed once it runs)'}" for s in servers]
    text = "\n".join(lines) or "you have no servers of your own (add one with action add)"
    return types.CallToolResult(content=[types.TextContent(text=text)],
                                structured_content={"servers": json.loads(json.dumps(items))})


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)])
