"""The `stats` command: what the gateways measured over the last hours, from the ``metrics`` and ``error_log`` tables.

Each series (a metric name and its labels) is summed up over the window: points, mean, median, 95th percentile
and maximum (latencies are in ms; a counter's points are its events). Errors are counted by type. A table each
(rich, the whole of every label even when piped: `gateway.console`), or ``--json``: one object on the last line
of stdout. Like ``status`` it shares the embedded Postgres of
a running ``serve``, whose telemetry reaches the tables about a second after it happens.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from typing import Any

from rich.table import Table
from rich.text import Text

from gateway.config import Settings
from gateway.console import command_console, folded
from gateway.db import open_database
from gateway.db.learning import ErrorCount, MetricStat


async def stats(settings: Settings, *, since_hours: float, as_json: bool) -> int:
    """Print the metrics and error counts of the last `since_hours` hours; exit 0."""
    window = timedelta(hours=since_hours)
    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
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
    }  # fmt: skip


def metrics_table(metrics: list[MetricStat], since_hours: float) -> Table:
    """One row per series: its name, labels, points and their mean, median, 95th percentile and maximum."""
    table = Table("metric", "labels", "count", "avg", "p50", "p95", "max", title=f"metrics, last {since_hours:g} h")
    for m in metrics:
        table.add_row(Text(m.name), Text(_labels(m.labels)), str(m.count),
                      *(f"{value:.1f}" for value in (m.avg, m.p50, m.p95, m.max)))  # fmt: skip
    return folded(table)


def errors_table(errors: list[ErrorCount], since_hours: float) -> Table:
    """One row per error type: how many, and when last."""
    table = Table("error", "count", "last seen", title=f"errors, last {since_hours:g} h")
    for e in errors:
        table.add_row(Text(e.error_type), str(e.count), e.last_seen.isoformat(timespec="seconds"))
    return folded(table)


def _labels(labels: dict[str, Any]) -> str:
    return ", ".join(f"{key}={value}" for key, value in sorted(labels.items()))
