"""`user-servers add|list|remove`: an admin manages a user's own MCP servers (stdio ones included).

An entry is read from standard input as JSON, shaped like one of the servers file's ``mcpServers`` entries;
``${secret:NAME}`` in it is that user's secret NAME (`pml-gateway secrets set`), filled in only when the server
starts. A user adds servers reached over HTTP themselves (the ``my_servers`` meta-tool); a stdio server runs a
command on the gateway's host, so only an admin adds one.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from gateway.cli._database import database, user_id
from gateway.errors import InvalidRequestError

if TYPE_CHECKING:
    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers
    from gateway.db import Database
    from gateway.services.user_servers import UserServerService


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    group = sub.add_parser("user-servers", help="add, list, remove a user's own MCP servers")
    verbs = group.add_subparsers(dest="user_servers_command", required=True)
    add = verbs.add_parser("add", parents=[common], help="a server for a user, its mcpServers entry as JSON on stdin")
    add.add_argument("username")
    add.add_argument("name")
    add.set_defaults(run=_add)
    listed = verbs.add_parser("list", parents=[common], help="a user's servers (entries as written: no secret)")
    listed.add_argument("username")
    listed.set_defaults(run=_list)
    remove = verbs.add_parser("remove", parents=[common], help="remove a user's server")
    remove.add_argument("username")
    remove.add_argument("name")
    remove.set_defaults(run=_remove)


def _service(db: Database) -> UserServerService:
    from gateway.services.user_servers import UserServerService

    return UserServerService(store=db.user_servers, secrets=None, bin_dir=None)


async def _add(invocation: Invocation) -> int:
    args = invocation.args
    try:
        entry = json.loads(sys.stdin.read())
    except json.JSONDecodeError as exc:
        raise InvalidRequestError(f"the entry on stdin is not JSON: {exc.msg} at line {exc.lineno}",
                                  field="entry") from None
    async with database(invocation.settings) as db:
        await _service(db).add(await user_id(db, args.username), args.name, entry, allow_stdio=True)
    sys.stdout.write(f"added the server {args.name} of {args.username}: its tools are @{args.name}:<tool>\n")
    return 0


async def _list(invocation: Invocation) -> int:
    async with database(invocation.settings) as db:
        servers = await _service(db).list(await user_id(db, invocation.args.username))
    for server in servers:
        sys.stdout.write(f"{server.name}\t{json.dumps(server.entry)}\n")
    sys.stdout.write(f"{len(servers)} servers\n")
    return 0


async def _remove(invocation: Invocation) -> int:
    args = invocation.args
    async with database(invocation.settings) as db:
        removed = await _service(db).remove(await user_id(db, args.username), args.name)
    if not removed:
        raise InvalidRequestError(f"{args.username} has no server {args.name!r}", field="name")
    sys.stdout.write(f"removed the server {args.name} of {args.username}\n")
    return 0
