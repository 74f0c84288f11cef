"""The `status` command: what the gateways running on this data directory see now, else what the index holds.

A running gateway keeps its state in a file of the data directory (`gateway.runstate`), so while one runs,
`status` reads that and touches neither Postgres nor the model: it answers at once, and what it says is what the
gateway sees. With none running it opens the database (starting the embedded one for the while) and shows the
servers' last recorded states, marked as such.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from gateway.config import GatewayConfig, Settings
from gateway.console import command_console, folded
from gateway.runstate import GatewayState, running


async def status(settings: Settings, config: GatewayConfig | None) -> int:
    """Print each running gateway and its servers, or, with none running, the index; exit 0."""
    console = command_console()
    gateways = running(settings.data_dir)
    if not gateways:
        console.print(f"no gateway is running on {settings.data_dir}")
        return await _stored(settings, config, console)
    for state in gateways:
        _print_gateway(console, state, config)
    return 0


def _print_gateway(console: Console, state: GatewayState, config: GatewayConfig | None) -> None:
    since = datetime.fromtimestamp(state.started, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    console.print(f"gateway pid {state.pid}, up {_duration(time.time() - state.started)} (since {since}), "
                  f"servers file {state.config or 'none'}")
    console.print(f"index: {state.index}" + (f" ({state.database})" if state.database else "")
                  + (f", embedding model {state.model}" if state.model else ""))
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
    import anyio.to_thread

    from gateway.db import open_database
    from gateway.embed import load_embedder

    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
        size = await db.size_bytes()
        counts = await db.tools.count_by_server()
        known = {s.name: s for s in await db.tools.server_statuses()}
    embedder = await anyio.to_thread.run_sync(lambda: load_embedder(settings.model_dir,
                                                                    threads=settings.embed_threads))
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
