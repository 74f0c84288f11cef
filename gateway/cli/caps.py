"""`caps list|show|rename|merge`: the learned capabilities from the shell.

They mirror the meta-tools ``cap_list``, ``cap_rename`` and ``cap_merge``: the same `CapabilityService`, the
same JSON items (``--json`` prints one object on the last line of stdout). Like ``status`` they share the
embedded Postgres of a running ``serve``. The embedding model is loaded only if the service asks for a vector,
which only a rename with a new description does. Tables keep every value whole, piped or on a narrow terminal
(`gateway.cli._console`); only the list shortens descriptions, which `show` prints in full.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from gateway.cli._database import database
from gateway.errors import InvalidRequestError
from gateway.settings import Settings

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from rich.table import Table

    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers
    from gateway.db import Database
    from gateway.models import Capability
    from gateway.ports import Embedder
    from gateway.services.capabilities import CapabilityService

DESCRIPTION_WIDTH = 60


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """``caps`` and its own subcommands; each takes the common options, so they may follow the subcommand."""
    caps = sub.add_parser("caps", help="list, show, rename, merge the capabilities learned from workflows")
    verbs = caps.add_subparsers(dest="caps_command", required=True)
    listing = verbs.add_parser("list", parents=[common], help="the capabilities, by name")
    listing.add_argument("--pattern", help="glob over namespace:action, e.g. 'notes:*'")
    listing.add_argument("--unnamed-only", action="store_true", help="only those never renamed by a user")
    listing.add_argument("--limit", type=_at_least(1), default=50, help="at most this many (up to 500)")
    listing.add_argument("--offset", type=_at_least(0), default=0, help="skip this many")
    show = verbs.add_parser("show", parents=[common], help="one capability in full, with its DAG")
    show.add_argument("ref", help="namespace:action, FQDN, id, or an old name")
    rename = verbs.add_parser("rename", parents=[common], help="give a capability a real name")
    rename.add_argument("ref", help="namespace:action, FQDN, id, or an old name")
    rename.add_argument("--namespace", help="^[a-z][a-z0-9]*$, at most 20 characters")
    rename.add_argument("--action", help="^[a-zA-Z][a-zA-Z0-9_]*$, at most 50, not exec_...")
    rename.add_argument("--description", help="what it does (re-embeds its intent: loads the model)")
    rename.add_argument("--tags", type=_tags, help="comma-separated; '' clears them")
    merge = verbs.add_parser("merge", parents=[common], help="fold SOURCE into TARGET (same tools only)")
    merge.add_argument("source", help="the capability folded in and deleted")
    merge.add_argument("target", help="the capability that stays")
    merge.add_argument("--prefer-source-code", action="store_true", help="keep SOURCE's DAG even if older")
    for verb, run in ((listing, _list), (show, _show), (rename, _rename), (merge, _merge)):
        verb.add_argument("--json", action="store_true", help="one JSON object on the last line of stdout")
        verb.set_defaults(run=run)


def _at_least(minimum: int) -> Callable[[str], int]:
    def integer(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, not {value}")
        return value

    return integer


def _tags(text: str) -> list[str]:
    return [tag.strip() for tag in text.split(",") if tag.strip()]


async def _list(invocation: Invocation) -> int:
    args = invocation.args
    return await list_capabilities(invocation.settings, pattern=args.pattern, unnamed_only=args.unnamed_only,
                                   limit=args.limit, offset=args.offset, as_json=args.json)


async def _show(invocation: Invocation) -> int:
    return await show(invocation.settings, invocation.args.ref, as_json=invocation.args.json)


async def _rename(invocation: Invocation) -> int:
    args = invocation.args
    return await rename(invocation.settings, args.ref, namespace=args.namespace, action=args.action,
                        description=args.description, tags=args.tags, as_json=args.json)


async def _merge(invocation: Invocation) -> int:
    args = invocation.args
    return await merge(invocation.settings, args.source, args.target, prefer_source_code=args.prefer_source_code,
                       as_json=args.json)


async def list_capabilities(settings: Settings, *, pattern: str | None, unnamed_only: bool, limit: int,
                            offset: int, as_json: bool) -> int:
    """`caps list`: a page of capabilities as a table and an "N of TOTAL" line, or as JSON like `cap_list`."""
    from gateway.cli._console import command_console

    async with _opened(settings) as (_, service):
        rows, total = await service.list(pattern=pattern, unnamed_only=unnamed_only, limit=limit, offset=offset)
    if as_json:
        _write_json({"total": total, "offset": offset, "capabilities": [_item(r) for r in rows]})
        return 0
    console = command_console()
    console.print(list_table(rows))
    console.print(f"{len(rows)} of {total} capabilities" + (f" (from #{offset + 1})" if offset else ""),
                  markup=False)
    return 0


async def show(settings: Settings, ref: str, *, as_json: bool) -> int:
    """`caps show REF`: one capability in full, its DAG document and the old names that still resolve to it."""
    from rich.json import JSON
    from rich.text import Text

    from gateway.cli._console import command_console

    async with _opened(settings) as (db, _):
        row = await db.capabilities.get(ref)
        if row is None:
            raise InvalidRequestError(f"no capability {ref!r} (see `pml-gateway caps list`)", field="ref")
        aliases = [a for a in await db.capabilities.aliases(row.id) if a not in (row.display_name, row.fqdn)]
    item = _full_json(row, aliases)
    if as_json:
        _write_json(item)
        return 0
    console = command_console()
    console.print(_details(item), markup=False)
    for title in ("parameters_schema", "cache_config", "document"):
        console.print(Text(f"{title}:", style="bold"))
        console.print(JSON.from_data(item[title], indent=2))
    return 0


async def rename(settings: Settings, ref: str, *, namespace: str | None, action: str | None,
                 description: str | None, tags: Sequence[str] | None, as_json: bool) -> int:
    """`caps rename REF`: a new ``namespace:action``, description or tags; the old name keeps resolving."""
    if namespace is None and action is None and description is None and tags is None:
        raise InvalidRequestError("nothing to change: pass --namespace, --action, --description or --tags")
    async with _opened(settings) as (_, service):
        row = await service.rename(ref, namespace=namespace, action=action, description=description, tags=tags)
    return _changed("renamed to", row, as_json=as_json)


async def merge(settings: Settings, source: str, target: str, *, prefer_source_code: bool, as_json: bool) -> int:
    """`caps merge SOURCE TARGET`: fold SOURCE into TARGET (same tools only); counts add up, SOURCE goes."""
    async with _opened(settings) as (_, service):
        row = await service.merge(source, target, prefer_source_code=prefer_source_code)
    return _changed("merged into", row, as_json=as_json)


@asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[tuple[Database, CapabilityService]]:
    from gateway.services.capabilities import CapabilityService

    async with database(settings) as db:
        yield db, CapabilityService(store=db.capabilities, edges=db.learning, embedder=_OnDemandEmbedder(
            settings.model_dir, settings.embed_threads), limiter=anyio.CapacityLimiter(1))


class _OnDemandEmbedder:
    """The embedding model, loaded on first use: list, show, merge and most renames never embed anything, and
    loading the model is slow. The service calls `embed` in a worker thread, so the load runs there too."""

    def __init__(self, model_dir: Path | None, threads: int | None) -> None:
        self._model_dir = model_dir
        self._threads = threads
        self._loaded: Embedder | None = None

    @property
    def model_id(self) -> str:
        return self._model().model_id

    @property
    def dimensions(self) -> int:
        return self._model().dimensions

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        return self._model().embed(texts)

    def _model(self) -> Embedder:
        if self._loaded is None:
            from gateway.embed import load_embedder

            self._loaded = load_embedder(self._model_dir, threads=self._threads)
        return self._loaded


def _changed(verb: str, row: Capability, *, as_json: bool) -> int:
    from gateway.cli._console import command_console

    item = _item(row)
    if as_json:
        _write_json(item)
    else:
        command_console().print(f"{verb} {item['name']} ({item['fqdn']}): used {item['usage_count']}x, "
                                f"{item['success_rate']:.0%} ok", markup=False)
    return 0


def list_table(rows: Sequence[Capability]) -> Table:
    """One row per capability: its name, usage, success rate, tools and (shortened) description."""
    from rich.table import Table
    from rich.text import Text

    from gateway.cli._console import folded

    table = Table("name", "usage", "success", "tools", "description")
    for row in rows:
        table.add_row(Text(row.display_name), str(row.usage_count), f"{row.success_rate:.0%}",
                      Text(", ".join(row.tools)), Text(_short(row.description)))
    return folded(table)


def _item(row: Capability) -> dict[str, Any]:
    """`cap_list`'s item for `row`: the server's own JSON, so that shell and meta-tool always agree."""
    from gateway.server.capability_tools import capability_json

    return capability_json(row)


def _full_json(row: Capability, aliases: Sequence[str]) -> dict[str, Any]:
    """`cap_list`'s item, plus what only `show` prints."""
    return {**_item(row), "pattern_hash": row.pattern_hash, "cache_config": row.cache_config,
            "document": row.document, "aliases": list(aliases), "created_at": row.created_at.isoformat(),
            "updated_at": row.updated_at.isoformat() if row.updated_at else None}


def _details(item: dict[str, Any]) -> Table:
    from rich.table import Table
    from rich.text import Text

    from gateway.cli._console import folded

    grid = Table.grid(padding=(0, 2))
    fields = [("name", item["name"]), ("id", item["id"]), ("fqdn", item["fqdn"]),
              ("tools", ", ".join(item["tools"])),
              ("usage", f"{item['usage_count']} runs, {item['success_count']} succeeded"),
              ("success rate", f"{item['success_rate']:.1%}"), ("avg duration", f"{item['avg_duration_ms']} ms"),
              ("description", item["description"] or ""), ("tags", ", ".join(item["tags"])),
              ("aliases", ", ".join(item["aliases"]) or "none"), ("created", item["created_at"]),
              ("updated", item["updated_at"] or "never")]
    for key, value in fields:
        grid.add_row(Text(key, style="bold"), Text(str(value)))
    return folded(grid)


def _short(description: str | None) -> str:
    text = " ".join((description or "").split())
    return text if len(text) <= DESCRIPTION_WIDTH else text[: DESCRIPTION_WIDTH - 1] + "…"


def _write_json(value: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
