"""`stats` and `prune`: what the gateways measured over the last hours, and the retention policies applied now.

`stats` sums up each series of the ``metrics`` table (a metric name and its labels) over the window: points,
mean, median, 95th percentile and maximum (latencies are in ms; a counter's points are its events), and counts
the ``error_log`` by type. A table each (rich, the whole of every label even when piped: `gateway.cli._console`),
or ``--json``: one object on the last line of stdout. A running gateway's telemetry reaches the tables about a
second after it happens.

`prune` deletes what the retention policies no longer keep and prints the rows deleted per table. The running
gateway applies the same policies by itself every few hours; this is for a database no gateway serves, or to
reclaim space at once. The deletions go in small batches, so the gateway's own writes are not held up.

Both share the embedded Postgres of a running ``serve``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING, Any

from gateway.cli._database import database
from gateway.settings import Settings

if TYPE_CHECKING:
    from rich.table import Table

    from gateway.cli._invocation import Invocation
    from gateway.cli._parser import Subparsers
    from gateway.db.learning import ErrorCount, MetricStat


def register(sub: Subparsers, common: argparse.ArgumentParser) -> None:
    """``prune`` and ``stats [--since HOURS] [--json]``."""
    sub.add_parser("prune", parents=[common], help="delete what the retention policies no longer keep, now"
                   ).set_defaults(run=_prune)
    stats = sub.add_parser("stats", parents=[common], help="latencies, workflow outcomes, restarts and errors measured")
    stats.add_argument("--since", type=float, default=24.0, metavar="HOURS", help="over the last HOURS (default 24)")
    stats.add_argument("--json", action="store_true", help="one JSON object on the last line of stdout")
    stats.set_defaults(run=_stats)


async def _stats(invocation: Invocation) -> int:
    return await stats(invocation.settings, since_hours=invocation.args.since, as_json=invocation.args.json)


async def _prune(invocation: Invocation) -> int:
    return await prune(invocation.settings)


async def stats(settings: Settings, *, since_hours: float, as_json: bool) -> int:
    """Print the metrics and error counts of the last `since_hours` hours; exit 0."""
    from datetime import timedelta

    from gateway.cli._console import command_console

    window = timedelta(hours=since_hours)
    async with database(settings) as db:
        metrics = await db.learning.metric_stats(window)
        errors = await db.learning.error_counts(window)
    if as_json:
        sys.stdout.write(json.dumps(stats_json(since_hours, metrics, errors)) + "\n")
        return 0
    console = command_console()
    console.print(metrics_table(metrics, since_hours))
    console.print(errors_table(errors, since_hours))
    return 0


def stats_json(since_hours: float, metrics: list[MetricStat], errors: list[ErrorCount]) -> dict[str, Any]:
    """The summed-up window as plain JSON values."""
    return {
        "since_hours": since_hours,
        "metrics": [{"name": m.name, "labels": m.labels, "count": m.count, "avg": m.avg, "p50": m.p50,
                     "p95": m.p95, "max": m.max} for m in metrics],
        "errors": [{"type": e.error_type, "count": e.count, "last_seen": e.last_seen.isoformat()} for e in errors],
    }


def metrics_table(metrics: list[MetricStat], since_hours: float) -> Table:
    """One row per series: its name, labels, points and their mean, median, 95th percentile and maximum."""
    from rich.table import Table
    from rich.text import Text

    from gateway.cli._console import folded

    table = Table("metric", "labels", "count", "avg", "p50", "p95", "max", title=f"metrics, last {since_hours:g} h")
    for m in metrics:
        table.add_row(Text(m.name), Text(_labels(m.labels)), str(m.count),
                      *(f"{value:.1f}" for value in (m.avg, m.p50, m.p95, m.max)))
    return folded(table)


def errors_table(errors: list[ErrorCount], since_hours: float) -> Table:
    """One row per error type: how many, and when last."""
    from rich.table import Table
    from rich.text import Text

    from gateway.cli._console import folded

    table = Table("error", "count", "last seen", title=f"errors, last {since_hours:g} h")
    for e in errors:
        table.add_row(Text(e.error_type), str(e.count), e.last_seen.isoformat(timespec="seconds"))
    return folded(table)


def _labels(labels: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))


async def prune(settings: Settings) -> int:
    """Delete what the retention policies no longer keep; a table of the rows deleted per table, exit 0."""
    from rich.console import Console
    from rich.table import Table

    async with database(settings) as db:
        deleted = await db.retention.prune()
    table = Table("table", "rows deleted", title="prune")
    for name, count in deleted.items():
        table.add_row(name, str(count))
    Console().print(table)
    return 0
