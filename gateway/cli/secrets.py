"""`secrets set|list|delete|rotate-master`: each user's secrets, sealed under the master keyring.

A value is read from standard input (never from the command line, which shells keep in their history) and
never printed. ``rotate-master`` adds a new master key to the keyring file and re-wraps every secret's data key
under it while gateways keep serving (they still hold the old key); ``--retire`` then drops the keys that wrap
nothing any more. With the keyring in ``PML_MASTER_KEY``, add the new key there yourself and run it.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from gateway.cli._database import database, user_id
from gateway.errors import ConfigError, InvalidRequestError
from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers
    from gateway.db import Database
    from gateway.services.secrets import SecretService
    from gateway.vault import KeyRing


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    secrets = sub.add_parser("secrets", help="set, list, delete users' secrets; rotate the master key")
    verbs = secrets.add_subparsers(dest="secrets_command", required=True)
    put = verbs.add_parser("set", parents=[common], help="store a secret for a user, its value read from stdin")
    put.add_argument("username")
    put.add_argument("name")
    put.set_defaults(run=_set)
    listed = verbs.add_parser("list", parents=[common], help="a user's secrets by name (never their values)")
    listed.add_argument("username")
    listed.set_defaults(run=_list)
    delete = verbs.add_parser("delete", parents=[common], help="delete a user's secret")
    delete.add_argument("username")
    delete.add_argument("name")
    delete.set_defaults(run=_delete)
    rotate = verbs.add_parser("rotate-master", parents=[common], help="a new master key; every secret re-wrapped "
                              "under it, without downtime")
    rotate.add_argument("--retire", action="store_true", help="then drop the older keys that wrap nothing")
    rotate.set_defaults(run=_rotate)
    for parser in (put, listed, delete, rotate):
        parser.add_argument("--master-key-file", help="the master keyring (env PML_MASTER_KEY_FILE; default "
                            "<data dir>/master.key; PML_MASTER_KEY holds the keyring itself)")


def keyring(settings: Settings, *, create: bool) -> KeyRing:
    from gateway.vault import load_keyring

    return load_keyring(environ_value=settings.master_key, path=settings.keyring_path, create=create)


def service(db: Database, keys: KeyRing) -> SecretService:
    from gateway.services.secrets import SecretService

    return SecretService(store=db.secrets, keys=keys)


async def _set(invocation: Invocation) -> int:
    args = invocation.args
    value = sys.stdin.read().removesuffix("\n")
    async with database(invocation.settings) as db:
        secrets = service(db, keyring(invocation.settings, create=True))
        await secrets.set(await user_id(db, args.username), args.name, value)
    sys.stdout.write(f"stored the secret {args.name} of {args.username}\n")
    return 0


async def _list(invocation: Invocation) -> int:
    async with database(invocation.settings) as db:
        entries = await db.secrets.names(await user_id(db, invocation.args.username))
    for entry in entries:
        sys.stdout.write(f"{entry.name}\tmaster key {entry.key_id}\tset {entry.updated_at:%Y-%m-%d %H:%M}\n")
    sys.stdout.write(f"{len(entries)} secrets\n")
    return 0


async def _delete(invocation: Invocation) -> int:
    args = invocation.args
    async with database(invocation.settings) as db:
        gone = await db.secrets.delete(await user_id(db, args.username), args.name)
    if not gone:
        raise InvalidRequestError(f"{args.username} has no secret {args.name!r}", field="name")
    sys.stdout.write(f"deleted the secret {args.name} of {args.username}\n")
    return 0


async def _rotate(invocation: Invocation) -> int:
    from gateway.vault import generate_key_line, write_keyring

    settings = invocation.settings
    path = settings.keyring_path
    if settings.master_key is None:
        old = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        write_keyring(path, [line for line in old if line.strip() and not line.startswith("#")]
                      + [generate_key_line()])
    keys = keyring(settings, create=False)
    async with database(settings) as db:
        done = await service(db, keys).rotate()
    sys.stdout.write(f"master key {keys.current_id}: {done.rewrapped} secrets re-wrapped, {done.skipped} changed "
                     "meanwhile\n")
    for key_id, count in sorted(done.by_key.items()):
        sys.stdout.write(f"  {key_id}: {count} secrets\n")
    if invocation.args.retire:
        _retire(settings, keys, done.by_key)
    return 0


def _retire(settings: Settings, keys: KeyRing, by_key: dict[str, int]) -> None:
    """Drop from the keyring file every key but the current one that wraps no secret."""
    from gateway.vault import write_keyring

    if settings.master_key is not None:
        raise ConfigError("the keyring comes from PML_MASTER_KEY: remove the old entries there yourself")
    kept = [key_id for key_id in keys.ids if key_id == keys.current_id or by_key.get(key_id)]
    lines = [line for line in settings.keyring_path.read_text(encoding="utf-8").splitlines()
             if line.partition(":")[0] in kept]
    write_keyring(settings.keyring_path, lines)
    sys.stdout.write(f"retired {len(keys.ids) - len(kept)} master keys; the keyring holds {', '.join(kept)}\n")
