"""The `users` commands: add, list, revoke and rotate the users of the HTTP gateway and their API keys.

A key is printed once, on stdout, when it is made (``add``, ``rotate``): only its Argon2id hash is stored, so
it cannot be shown again. A revoke or rotate counts from a running gateway's next request. Like ``status``
these commands share the embedded Postgres of a running ``serve``.
"""

from __future__ import annotations

import sys
from datetime import datetime

import anyio
from rich.console import Console
from rich.table import Table
from rich.text import Text

from gateway.config import Settings
from gateway.db import open_database
from gateway.errors import InvalidRequestError
from gateway.services.auth import create_user, rotate_key


async def run(settings: Settings, verb: str, *, username: str | None = None, role: str = "user") -> int:
    """`users VERB`: dispatch to the command; exit 0, or an error (unknown or taken user) for the CLI to show."""
    if verb == "list":
        return await list_users(settings)
    assert username is not None, f"users {verb} takes a username"
    if verb == "add":
        return await add(settings, username, role=role)
    if verb == "revoke":
        return await revoke(settings, username)
    return await rotate(settings, username)


async def add(settings: Settings, username: str, *, role: str) -> int:
    """`users add NAME`: a new user with a new key, printed once."""
    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
        key = await create_user(db.users, username, role=role, limiter=anyio.CapacityLimiter(1))
    _show_key(f"added user {username} (role {role})", key)
    return 0


async def list_users(settings: Settings) -> int:
    """`users list`: every user, with role, key prefix, creation and revocation dates (never a hash)."""
    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
        users = await db.users.list()
    table = Table("username", "role", "key prefix", "created", "revoked")
    for user in users:
        table.add_row(Text(user.username), user.role, user.key_prefix or "", _when(user.created_at),
                      _when(user.revoked_at))
    console = Console()
    console.print(table)
    console.print(f"{len(users)} users", markup=False)
    return 0


async def revoke(settings: Settings, username: str) -> int:
    """`users revoke NAME`: the user's key stops working (``users rotate`` gives a new one)."""
    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
        user = await db.users.revoke(username)
    if user is None:
        raise _unknown(username)
    sys.stdout.write(f"revoked the key of {username} ({user.key_prefix}...)\n")
    return 0


async def rotate(settings: Settings, username: str) -> int:
    """`users rotate NAME`: a new key for the user, printed once; the old one stops working."""
    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
        key = await rotate_key(db.users, username, limiter=anyio.CapacityLimiter(1))
    _show_key(f"new key for {username}", key)
    return 0


def _show_key(what: str, key: str) -> None:
    sys.stdout.write(f"{what}; the API key is shown only this once, keep it now:\n{key}\n")


def _unknown(username: str) -> InvalidRequestError:
    return InvalidRequestError(f"no user {username!r} (see `pml-gateway users list`)", field="username")


def _when(moment: datetime | None) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M") if moment is not None else ""
