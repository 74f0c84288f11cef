"""A minimal MCP stdio server that lists one fake server's share of the bench catalog, and nothing else.

Run by the gateway under bench: ``python bench/_catalog_server.py --size 10000 --server srv03``. Raw JSON-RPC
lines on stdin/stdout (initialize, ping, tools/list in one page), no SDK: twenty of them start in well under a
second on two cores. Listing the very tools the bench stored keeps the gateway from dropping them as servers
no longer configured, and its re-sync finds nothing to change.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from _catalog import SEALTOOLS, SERVERS, catalog

METHOD_NOT_FOUND = -32601


def _tools(size: int, server: str, servers: int, directory: Path) -> list[dict[str, Any]]:
    return [
        {"name": t["name"], "description": t["description"], "inputSchema": t["input_schema"]}
        for t in catalog(size, servers=servers, directory=directory)
        if t["server"] == server
    ]


def _answer(message: dict[str, Any], server: str, tools: list[dict[str, Any]]) -> dict[str, Any]:
    method = message.get("method")
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": message["params"]["protocolVersion"],
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": server, "version": "0"},
        }
    elif method == "tools/list":
        result = {"tools": tools}
    elif method == "ping":
        result = {}
    else:
        error = {"code": METHOD_NOT_FOUND, "message": f"method not found: {method}"}
        return {"jsonrpc": "2.0", "id": message["id"], "error": error}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--server", required=True)
    parser.add_argument("--servers", type=int, default=SERVERS)
    parser.add_argument("--catalog", type=Path, default=SEALTOOLS)
    args = parser.parse_args()
    tools = _tools(args.size, args.server, args.servers, args.catalog)
    for line in sys.stdin:
        if not line.strip():
            continue
        message = json.loads(line)
        if "id" in message and "method" in message:
            sys.stdout.write(json.dumps(_answer(message, args.server, tools)) + "\n")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
