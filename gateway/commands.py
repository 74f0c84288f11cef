"""The one-shot commands `index`, `search` and `eval`, each printing a table (rich) to stdout."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gateway.config import GatewayConfig, Settings
from gateway.db import open_database
from gateway.downstream import Supervisor
from gateway.embed import OnnxEmbedder, load_embedder
from gateway.evaluation import EvalInputs, evaluate_dag, evaluate_retrieval, load_queries, load_tools
from gateway.models import IndexReport, ServerState, ToolDef
from gateway.services import Indexer, SearchService

logger = logging.getLogger(__name__)

SETTLE_TIMEOUT_S = 60.0


async def index(settings: Settings, config: GatewayConfig) -> int:
    """Start every enabled server, sync and embed its tools with a progress bar, stop. Exit 1 if one failed."""
    listed: dict[str, Sequence[ToolDef]] = {}

    async def on_tools(server: str, tools: Sequence[ToolDef]) -> None:
        listed[server] = tools

    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
        embedder = await anyio.to_thread.run_sync(_embedder, settings)
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
    """Rank the indexed tools for `query` exactly as `search_tools` does, as a table."""
    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
        embedder = await anyio.to_thread.run_sync(_embedder, settings)
        service = SearchService(index=db.tools, embedder=embedder, limiter=anyio.CapacityLimiter(1))
        result = await service.search(query, limit=limit, server=server)
    table = Table("#", "tool", "score", "description", title=f"search: {result.query}")
    for i, hit in enumerate(result.hits, 1):
        table.add_row(str(i), hit.tool_id, f"{hit.score:.3f}", hit.description[:100])
    Console().print(table)
    return 0 if result.hits else 1


async def evaluate(kind: str, *, tools: Path, queries: Path, history: Path | None, split: str | None,
                   use_graph: bool, as_json: bool, model_dir: Path | None, signals: str = "hybrid",
                   threads: int | None = None) -> int:
    """`eval retrieval|dag`: metrics as a table, or as one JSON object on the last line with `--json`."""
    inputs = EvalInputs(tools=load_tools(tools), queries=load_queries(queries, split=split),
                        history=load_queries(history) if history else (), use_graph=use_graph, signals=signals,
                        model_dir=model_dir, threads=threads)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True)) as bar:
        stages: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in stages:
                stages[stage] = bar.add_task(stage, total=total)
            bar.update(stages[stage], completed=done, total=total)

        run = evaluate_retrieval if kind == "retrieval" else evaluate_dag
        metrics = await run(inputs, progress)
    if as_json:
        sys.stdout.write(json.dumps(metrics) + "\n")
    else:
        table = Table("metric", "value", title=f"eval {kind} ({'graph' if use_graph else 'no graph'})")
        for key, value in metrics.items():
            table.add_row(key, json.dumps(value))
        Console().print(table)
    return 0


def _embedder(settings: Settings) -> OnnxEmbedder:
    return load_embedder(settings.model_dir, threads=settings.embed_threads)
