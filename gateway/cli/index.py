"""`index`, `search` and `status`: fill the tool index from the servers, rank it for a query, and say what it holds.

`status` reads first what the gateways running on the data directory wrote there (`gateway.runstate`): while
one runs, it answers from that at once, touching neither Postgres nor the model, and says what the gateway sees
now. With none running it opens the database (starting the embedded one for the while) and shows the servers'
last recorded states, marked as such. So every import of the database, the servers and the model is inside the
command that needs it. Tables (rich) go to stdout, progress bars to stderr.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import anyio

from gateway.cli._database import database
from gateway.config import GatewayConfig
from gateway.settings import Settings

if TYPE_CHECKING:
    from rich.console import Console

    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers
    from gateway.embed import OnnxEmbedder
    from gateway.models import IndexReport, ToolDef
    from gateway.runstate import GatewayState
    from gateway.services import Indexer

SETTLE_TIMEOUT_S = 60.0


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """``index``, ``search QUERY [--limit N] [--server NAME]`` and ``status``."""
    sub.add_parser("index", parents=[common], help="start the servers, index and embed their tools, stop"
                   ).set_defaults(run=_index)
    search = sub.add_parser("search", parents=[common], help="rank the indexed tools for a query")
    search.add_argument("query")
    search.add_argument("--limit", type=int, default=5)
    search.add_argument("--server", help="only tools of this server")
    search.set_defaults(run=_search)
    sub.add_parser("status", parents=[common], help="database, servers, tool counts, embedding model"
                   ).set_defaults(run=_status)


async def _index(invocation: Invocation) -> int:
    return await index(invocation.settings, invocation.required_servers())


async def _search(invocation: Invocation) -> int:
    invocation.servers()  # a servers file named but broken is refused, as by every command that reads one
    args = invocation.args
    return await search(invocation.settings, args.query, limit=args.limit, server=args.server)


async def _status(invocation: Invocation) -> int:
    return await status(invocation.settings, invocation.servers())


async def index(settings: Settings, config: GatewayConfig) -> int:
    """Start every enabled server, sync and embed its tools with a progress bar, stop. Exit 1 if one failed."""
    from rich.console import Console
    from rich.table import Table

    from gateway.downstream import Supervisor
    from gateway.models import IndexReport, ServerState
    from gateway.services import Indexer

    listed: dict[str, Sequence[ToolDef]] = {}

    async def on_tools(server: str, tools: Sequence[ToolDef]) -> None:
        listed[server] = tools

    async with database(settings) as db:
        embedder = await _embedder(settings)
        indexer = Indexer(index=db.tools, embedder=embedder, limiter=anyio.CapacityLimiter(2))
        supervisor = Supervisor(servers=config.servers, on_tools=on_tools, on_status=db.tools.record_server_status)
        async with anyio.create_task_group() as tg:
            await tg.start(supervisor.run)
            await supervisor.wait_settled(SETTLE_TIMEOUT_S)
            reports = await _index_with_progress(indexer, listed)
            statuses = supervisor.statuses()
            tg.cancel_scope.cancel()
        await db.tools.record_stopped(statuses)
    table = Table("server", "state", "tools", "added", "changed", "removed", "embedded", "reason")
    by_server = {r.server: r for r in reports}
    for status in statuses:
        r = by_server.get(status.name, IndexReport(server=status.name, tools=0))
        table.add_row(status.name, status.state.value, *map(str, (r.tools, r.added, r.changed, r.removed)),
                      str(r.embedded), status.reason or "")
    Console().print(table)
    return 1 if any(s.state is ServerState.FAILED for s in statuses) else 0


async def _index_with_progress(indexer: Indexer, listed: dict[str, Sequence[ToolDef]]) -> list[IndexReport]:
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    reports = []
    with Progress(*columns, console=Console(stderr=True)) as progress:
        for server, tools in sorted(listed.items()):
            task = progress.add_task(f"embedding {server}", total=None)

            def advance(done: int, total: int, task: object = task) -> None:
                progress.update(task, completed=done, total=total)  # type: ignore[arg-type]

            reports.append(await indexer.sync(server, tools, progress=advance))
            progress.update(task, total=1, completed=1)
    return reports


async def search(settings: Settings, query: str, *, limit: int, server: str | None) -> int:
    """Rank the indexed tools for `query` exactly as `search_tools` does, as a table; exit 1 if none matched."""
    from rich.console import Console
    from rich.table import Table

    from gateway.services import SearchService

    async with database(settings) as db:
        embedder = await _embedder(settings)
        service = SearchService(index=db.tools, embedder=embedder, limiter=anyio.CapacityLimiter(1))
        result = await service.search(query, limit=limit, server=server)
    table = Table("#", "tool", "score", "description", title=f"search: {result.query}")
    for i, hit in enumerate(result.hits, 1):
        table.add_row(str(i), hit.tool_id, f"{hit.score:.3f}", hit.description[:100])
    Console().print(table)
    return 0 if result.hits else 1


async def _embedder(settings: Settings) -> OnnxEmbedder:
    """The embedding model of the settings, loaded in a worker thread: off the event loop."""
    import anyio.to_thread

    from gateway.embed import load_embedder

    return await anyio.to_thread.run_sync(lambda: load_embedder(settings.model_dir, threads=settings.embed_threads))


async def status(settings: Settings, config: GatewayConfig | None) -> int:
    """Print each running gateway and its servers, or, with none running, the index; exit 0."""
    from gateway.cli._console import command_console
    from gateway.runstate import running

    console = command_console()
    gateways = running(settings.data_dir)
    if not gateways:
        console.print(f"no gateway is running on {settings.data_dir}")
        return await _stored(settings, config, console)
    for state in gateways:
        _print_gateway(console, state, config)
    return 0


def _print_gateway(console: Console, state: GatewayState, config: GatewayConfig | None) -> None:
    from datetime import UTC, datetime

    from rich.table import Table

    from gateway.cli._console import folded

    since = datetime.fromtimestamp(state.started, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    console.print(f"gateway pid {state.pid}, up {_duration(time.time() - state.started)} (since {since}), "
                  f"servers file {state.config or 'none'}")
    console.print(f"index: {state.index}" + (f" ({state.database})" if state.database else "")
                  + (f", embedding model {state.model}" if state.model else ""))
    waiting = [s["name"] for s in state.servers if s["state"] == "starting" and not s["reason"]]
    if waiting or state.unindexed:
        console.print("not complete yet: " + "; ".join(
            ([f"not yet listed (starting): {', '.join(waiting)}"] if waiting else [])
            + ([f"listed but not yet indexed: {', '.join(state.unindexed)}"] if state.unindexed else [])))
    elif state.index == "open":
        console.print("complete: every running server's tools are indexed")
    table = Table("server", "state", "tools", "restarts", "reason")
    for server in state.servers:
        if config is not None and config.server(server["name"]) is None:
            continue  # `--config` names another file: show only its servers
        table.add_row(server["name"], server["state"], str(server["tools"]), str(server["restarts"]),
                      server["reason"] or "")
    console.print(folded(table))


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {secs} s" if minutes else f"{secs} s"


async def _stored(settings: Settings, config: GatewayConfig | None, console: Console) -> int:
    """Database location and size, each server's last recorded state, tool counts, embedding model."""
    from rich.table import Table

    from gateway.cli._console import folded

    async with database(settings) as db:
        size = await db.size_bytes()
        counts = await db.tools.count_by_server()
        known = {s.name: s for s in await db.tools.server_statuses()}
    embedder = await _embedder(settings)
    kind = "embedded" if db.embedded else "external"
    console.print(f"database: {kind} {db.location} ({size / 1e6:.1f} MB)")
    console.print(f"embedding model: {embedder.model_id} ({embedder.dimensions}-d)")
    table = Table("server", "last recorded state", "tools", "embedded", "restarts", "reason")
    names = [s.name for s in config.servers] if config else sorted(set(known) | set(counts))
    for name in names:
        spec = config.server(name) if config else None
        last = known.get(name)
        state = "disabled" if spec and spec.disabled else (last.state.value if last else "never started")
        tools, embedded = counts.get(name, (0, 0))
        table.add_row(name, state, str(tools), str(embedded), str(last.restarts if last else 0),
                      (last.reason or "") if last else "")
    console.print(folded(table))
    return 0
