"""Learning persistence in Postgres: `LearningStore` keeps the learned tool graph and what ranking learns from.

`record_run` writes what one DAG run taught, in one transaction: a sighting of each edge in
``tool_dependency`` (an edge turns from ``inferred`` to ``observed`` after `PROMOTE_AFTER` sightings; ``user``
and ``template`` edges keep their source) and a call of each tool in ``tool_usage``. Each upsert is a single
``INSERT ... ON CONFLICT DO UPDATE``, so concurrent runs lose no sighting; keys go in sorted order, so two runs
lock shared rows in the same order and cannot deadlock. The same transaction notifies ``pml_learned`` with the
store's `origin`, so other gateways on the database rebuild their graph (`gateway.db.notify`). Adaptive
thresholds (with their window of outcomes) and configuration round-trip; metrics and errors are appended.
Every psycopg error surfaces as a `DatabaseError` via `translated`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from gateway.db.pool import Pool, translated
from gateway.db.queries import query as named_query
from gateway.models import JsonObject

PROMOTE_AFTER = 3
"""Sightings after which an inferred edge counts as observed."""
OUTCOME_WINDOW = 50
"""Outcomes kept per context hash; `save_threshold` keeps the newest (the last ones of the list)."""
_NEW_EDGE_SOURCES = ("inferred", "observed")


@dataclass(frozen=True, slots=True)
class EdgeRow:
    """One edge of the learned graph."""

    from_tool_id: str
    to_tool_id: str
    edge_type: str
    observed_count: int
    confidence_score: float
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ThresholdRow:
    """The adaptive thresholds of one context, with the outcomes (JSON values, oldest first) they come from."""

    context_hash: str
    context_keys: JsonObject
    suggestion_threshold: float = 0.70
    explicit_threshold: float = 0.50
    success_rate: float | None = None
    sample_count: int = 0
    outcomes: list[Any] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ConfigRow:
    """One learned configuration value and the samples it was learned from."""

    config_key: str
    config_value: float
    total_samples: int


@dataclass(frozen=True, slots=True)
class MetricStat:
    """One series of ``metrics`` (a name and its labels) over a window: points, mean, median, p95, maximum."""

    name: str
    labels: JsonObject
    count: int
    avg: float
    p50: float
    p95: float
    max: float


@dataclass(frozen=True, slots=True)
class ErrorCount:
    """How many errors of one type ``error_log`` holds over a window, and when the last one came."""

    error_type: str
    count: int
    last_seen: datetime


@dataclass(frozen=True, slots=True)
class _Usage:
    tool_id: str
    calls: int
    successes: int


@dataclass(frozen=True, slots=True)
class _Hit:
    tool_id: str
    score: float


class LearningStore:
    """The learned graph, tool reliability, adaptive thresholds and config, metrics and errors, over the pool."""

    def __init__(self, pool: Pool, *, origin: str | None = None) -> None:
        self._pool = pool
        self.origin = origin or uuid.uuid4().hex
        """Who recorded a run, as its notice says: unique to this store unless given."""

    async def record_run(
        self, *, edges: Sequence[tuple[str, str, str]], tools: Sequence[tuple[str, bool, float]],
        promote_after: int = PROMOTE_AFTER, weights: Mapping[str, float], factors: Mapping[str, float],
    ) -> None:
        """Record one run atomically: a sighting of each ``(from, to, edge_type)`` edge, a call of each
        ``(tool_id, success, duration_ms)`` tool; other gateways are notified on commit. An edge's confidence
        becomes ``weights[edge_type] x factors[source]`` (kept as it was for a source that `factors` lacks, such
        as ``user``).

        `ValueError` when `weights` lacks an edge's type or `factors` lacks ``inferred`` or ``observed``.
        """
        edge_params = _edge_params(edges, promote_after=promote_after, weights=weights, factors=factors)
        tool_params = [
            {"tool_id": tool_id, "success": success, "ms": round(ms)} for tool_id, success, ms in sorted(tools)
        ]
        if not edge_params and not tool_params:
            return
        action = f"recording a run ({len(edge_params)} edges, {len(tool_params)} tool calls)"
        async with translated(action), self._pool.connection() as conn:
            async with conn.transaction(), conn.cursor() as cursor:
                if edge_params:
                    await cursor.executemany(named_query("upsert_edge"), edge_params)
                if tool_params:
                    await cursor.executemany(named_query("upsert_tool_usage"), tool_params)
                await cursor.execute(named_query("notify_learned"), {"origin": self.origin})

    async def edges(self) -> list[EdgeRow]:
        """Every edge of the learned graph, ordered by (from, to, edge type)."""
        async with translated("reading the learned graph"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(EdgeRow))
            await cursor.execute(named_query("all_edges"))
            return await cursor.fetchall()

    async def usage(self) -> dict[str, tuple[int, int]]:
        """``(calls, successes)`` of every tool that was called in a recorded run."""
        async with translated("reading tool usage"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(_Usage))
            rows = await (await cursor.execute(named_query("all_tool_usage"))).fetchall()
        return {row.tool_id: (row.calls, row.successes) for row in rows}

    async def threshold(self, context_hash: str) -> ThresholdRow | None:
        """The saved thresholds of `context_hash`, or None."""
        async with translated(f"reading the thresholds of context {context_hash!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(ThresholdRow))
            await cursor.execute(named_query("get_threshold"), {"context_hash": context_hash})
            return await cursor.fetchone()

    async def update_threshold(
        self, context_hash: str, change: Callable[[ThresholdRow | None], ThresholdRow]
    ) -> ThresholdRow:
        """Read, `change` and save the thresholds of `context_hash` in one transaction that holds the context's
        lock: gateways on one database recording outcomes at once lose none. `change` is pure (no I/O)."""
        async with translated(f"updating the thresholds of context {context_hash!r}"), self._pool.connection() as c:
            async with c.transaction():
                await c.execute(named_query("lock_threshold"), {"context_hash": context_hash})
                cursor = c.cursor(row_factory=class_row(ThresholdRow))
                await cursor.execute(named_query("get_threshold"), {"context_hash": context_hash})
                row = change(await cursor.fetchone())
                await c.execute(named_query("upsert_threshold"), _threshold_params(row))
        return row

    async def save_threshold(self, row: ThresholdRow) -> None:
        """Insert or replace the thresholds of ``row.context_hash``, keeping its newest `OUTCOME_WINDOW` outcomes."""
        action = f"saving the thresholds of context {row.context_hash!r}"
        async with translated(action), self._pool.connection() as conn:
            await conn.execute(named_query("upsert_threshold"), _threshold_params(row))

    async def get_config(self, key: str) -> ConfigRow | None:
        """The learned value of `key` and its sample count, or None if never set."""
        async with translated(f"reading config {key!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(ConfigRow))
            await cursor.execute(named_query("get_config"), {"key": key})
            return await cursor.fetchone()

    async def set_config(self, key: str, value: float, samples: int) -> None:
        """Set `key` to `value`, learned from `samples` samples."""
        async with translated(f"saving config {key!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("upsert_config"), {"key": key, "value": value, "samples": samples})

    async def record_metric(self, name: str, value: float, metadata: JsonObject | None = None) -> None:
        """Append one point of the time series `name`."""
        params = {"name": name, "value": value, "metadata": _json(metadata)}
        async with translated(f"recording metric {name!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("insert_metric"), params)

    async def record_error(
        self, error_type: str, message: str, stack: str | None = None, context: JsonObject | None = None
    ) -> None:
        """Append one operational error to ``error_log``."""
        params = {"error_type": error_type, "message": message, "stack": stack, "context": _json(context)}
        async with translated(f"logging a {error_type!r} error"), self._pool.connection() as conn:
            await conn.execute(named_query("insert_error"), params)

    async def record_telemetry(
        self, metrics: Sequence[tuple[str, float, JsonObject | None]],
        errors: Sequence[tuple[str, str, str | None, JsonObject | None]],
    ) -> None:
        """Append a batch of ``(name, value, metadata)`` metrics and ``(type, message, stack, context)``
        errors in one transaction."""
        if not metrics and not errors:
            return
        metric_params = [{"name": n, "value": v, "metadata": _json(m)} for n, v, m in metrics]
        error_params = [{"error_type": t, "message": m, "stack": s, "context": _json(c)} for t, m, s, c in errors]
        action = f"recording telemetry ({len(metrics)} metrics, {len(errors)} errors)"
        async with translated(action), self._pool.connection() as conn:
            async with conn.transaction(), conn.cursor() as cursor:
                if metric_params:
                    await cursor.executemany(named_query("insert_metric"), metric_params)
                if error_params:
                    await cursor.executemany(named_query("insert_error"), error_params)

    async def metric_stats(self, since: timedelta) -> list[MetricStat]:
        """Each series of ``metrics`` recorded within `since`, by name then labels."""
        async with translated("summing up the metrics"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(MetricStat))
            return await (await cursor.execute(named_query("metric_stats"), {"since": since})).fetchall()

    async def error_counts(self, since: timedelta) -> list[ErrorCount]:
        """The errors of ``error_log`` logged within `since`, counted by type, the most frequent first."""
        async with translated("counting the logged errors"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(ErrorCount))
            return await (await cursor.execute(named_query("error_counts"), {"since": since})).fetchall()


def _edge_params(
    edges: Sequence[tuple[str, str, str]], *, promote_after: int, weights: Mapping[str, float],
    factors: Mapping[str, float],
) -> list[dict[str, Any]]:
    """Bound parameters of each edge sighting, in key order (the lock order of concurrent runs)."""
    if not edges:
        return []
    missing_types = sorted({edge_type for _, _, edge_type in edges} - weights.keys())
    missing_sources = [source for source in _NEW_EDGE_SOURCES if source not in factors]
    if missing_types or missing_sources:
        raise ValueError(f"no weight for edge types {missing_types} or no factor for sources {missing_sources}")
    factors_json = Jsonb(dict(factors))
    return [
        {"from_tool_id": src, "to_tool_id": dst, "edge_type": edge_type, "weight": weights[edge_type],
         "factors": factors_json, "promote_after": promote_after}
        for src, dst, edge_type in sorted(edges)
    ]


def _json(value: JsonObject | None) -> Jsonb | None:
    return None if value is None else Jsonb(value)


def _threshold_params(row: ThresholdRow) -> dict[str, Any]:
    return {
        "context_hash": row.context_hash, "context_keys": Jsonb(row.context_keys),
        "suggestion_threshold": row.suggestion_threshold, "explicit_threshold": row.explicit_threshold,
        "success_rate": row.success_rate, "sample_count": row.sample_count,
        "outcomes": Jsonb(row.outcomes[-OUTCOME_WINDOW:]),
    }
