"""`users add|list|revoke|rotate`: the users of the HTTP gateway, their API keys and linked OAuth identities.

A key is printed once, on stdout, when it is made (``add``, ``rotate``): only its Argon2id hash is stored, so
it cannot be shown again. A revoke or rotate counts from a running gateway's next request. Like ``status``
these commands share the embedded Postgres of a running ``serve``.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

import anyio

from gateway.cli._database import database
from gateway.errors import InvalidRequestError
from gateway.settings import Settings

if TYPE_CHECKING:
    from datetime import datetime

    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """``users add NAME [--role ROLE]``, ``users list``, ``users revoke NAME``, ``users rotate NAME``."""
    users = sub.add_parser("users", help="add, list, revoke, rotate the users of the HTTP gateway and their API keys")
    verbs = users.add_subparsers(dest="users_command", required=True)
    add = verbs.add_parser("add", parents=[common], help="a new user; prints its API key, only this once")
    add.add_argument("username")
    add.add_argument("--role", choices=["user", "admin", "ops"], default="user")
    add.add_argument("--github-id", metavar="ID", help="link the GitHub account of this numeric id (OAuth sign-in)")
    add.add_argument("--oidc-subject", metavar="SUB", help="link this OpenID Connect subject (OAuth sign-in; with "
                     "--oidc-issuer)")
    add.add_argument("--oidc-issuer", metavar="URL", help="the issuer of --oidc-subject, as given to serve's "
                     "--oauth-issuer")
    add.set_defaults(run=_add)
    verbs.add_parser("list", parents=[common], help="the users, their roles and key prefixes (no keys)"
                     ).set_defaults(run=_list)
    revoke = verbs.add_parser("revoke", parents=[common], help="the user's key stops working")
    revoke.add_argument("username")
    revoke.set_defaults(run=_revoke)
    rotate = verbs.add_parser("rotate", parents=[common], help="a new key for the user, printed once; the old one "
                              "stops working")
    rotate.add_argument("username")
    rotate.set_defaults(run=_rotate)


async def _add(invocation: Invocation) -> int:
    args = invocation.args
    if (args.oidc_subject is None) != (args.oidc_issuer is None):
        raise InvalidRequestError("--oidc-subject and --oidc-issuer go together", field="oidc_subject")
    return await add(invocation.settings, args.username, role=args.role, github_id=args.github_id,
                     oidc=None if args.oidc_subject is None else (args.oidc_issuer, args.oidc_subject))


async def _list(invocation: Invocation) -> int:
    return await list_users(invocation.settings)


async def _revoke(invocation: Invocation) -> int:
    return await revoke(invocation.settings, invocation.args.username)


async def _rotate(invocation: Invocation) -> int:
    return await rotate(invocation.settings, invocation.args.username)


async def add(settings: Settings, username: str, *, role: str, github_id: str | None = None,
              oidc: tuple[str, str] | None = None) -> int:
    """`users add NAME`: a new user with a new key, printed once; with an upstream identity linked, that
    identity signs in as this user through OAuth (the way in when sign-up is closed)."""
    from gateway.services.auth import create_user

    async with database(settings) as db:
        key = await create_user(db.users, username, role=role, limiter=anyio.CapacityLimiter(1))
        if github_id is not None or oidc is not None:
            await db.oauth.link_identity(username, github_id=github_id, oidc_issuer=oidc and oidc[0],
                                         oidc_subject=oidc and oidc[1])
    _show_key(f"added user {username} (role {role})", key)
    return 0


async def list_users(settings: Settings) -> int:
    """`users list`: every user, with role, key prefix, creation and revocation dates (never a hash), and how
    each signs in (``key``, ``github``, ``oidc``)."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    async with database(settings) as db:
        users = await db.users.list()
    table = Table("username", "role", "key prefix", "created", "revoked", "signs in with")
    for user in users:
        table.add_row(Text(user.username), user.role, user.key_prefix or "", _when(user.created_at),
                      _when(user.revoked_at), ", ".join(user.sign_in))
    console = Console()
    console.print(table)
    console.print(f"{len(users)} users", markup=False)
    return 0


async def revoke(settings: Settings, username: str) -> int:
    """`users revoke NAME`: the user's key stops working (``users rotate`` gives a new one)."""
    async with database(settings) as db:
        user = await db.users.revoke(username)
    if user is None:
        raise _unknown(username)
    sys.stdout.write(f"revoked the key of {username} ({user.key_prefix}...)\n")
    return 0


async def rotate(settings: Settings, username: str) -> int:
    """`users rotate NAME`: a new key for the user, printed once; the old one stops working."""
    from gateway.services.auth import rotate_key

    async with database(settings) as db:
        key = await rotate_key(db.users, username, limiter=anyio.CapacityLimiter(1))
    _show_key(f"new key for {username}", key)
    return 0


def _show_key(what: str, key: str) -> None:
    sys.stdout.write(f"{what}; the API key is shown only this once, keep it now:\n{key}\n")


def _unknown(username: str) -> InvalidRequestError:
    return InvalidRequestError(f"no user {username!r} (see `pml-gateway users list`)", field="username")


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment is not None else ""
