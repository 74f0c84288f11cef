"""Telemetry: what the gateway measures, kept in memory for ``/metrics`` and written to Postgres in the background.

`Telemetry.observe` (a latency, in ms) and `Telemetry.count` (one event) update process-lifetime aggregates
(counters; summaries with count, sum and quantiles over the most recent `RESERVOIR` values of each label set)
and queue a row for the ``metrics`` table; `Telemetry.error` queues an ``error_log`` row. Nothing on the call
path waits for the database: the queue is bounded, and when it is full the oldest row goes and is counted in
``pml_telemetry_dropped_total``. `Telemetry.run` is the one task that writes the queue, in batches.
`Telemetry.prometheus` renders the aggregates (`gateway.services.prometheus`).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar

import anyio
import anyio.abc

from gateway.errors import DatabaseUnavailableError, GatewayError
from gateway.models import JsonObject
from gateway.services.prometheus import (
    METRIC_NAME_RE,
    CounterSeries,
    Family,
    Labels,
    SummarySeries,
    quantile,
    render,
)

logger = logging.getLogger(__name__)

SEARCH_LATENCY = "pml_search_latency_ms"
CALL_LATENCY = "pml_tool_call_latency_ms"
WORKFLOWS = "pml_workflows_total"
WORKFLOW_WALL = "pml_workflow_wall_ms"
STATE_CHANGES = "pml_downstream_state_changes_total"
RESTARTS = "pml_downstream_restarts_total"
ERRORS = "pml_errors_total"
DROPPED = "pml_telemetry_dropped_total"
HELP = {
    SEARCH_LATENCY: "search_tools latency in milliseconds",
    CALL_LATENCY: "Downstream tool call latency in milliseconds, by tool and outcome (ok or error)",
    WORKFLOWS: "Finished workflows, by status",
    WORKFLOW_WALL: "Wall time of finished workflows in milliseconds, by status",
    STATE_CHANGES: "Downstream server state changes, by server and new state",
    RESTARTS: "Downstream server restarts, by server",
    ERRORS: "Errors answered to clients, by type",
    DROPPED: "Telemetry rows not written to the database, by reason",
}
QUANTILES = (0.5, 0.95, 0.99)
RESERVOIR = 1024
"""Recent values kept per summary series, for its quantiles."""
QUEUE_LIMIT = 10_000
"""Rows waiting for the database, at most; past it the oldest are dropped."""
BATCH_ROWS = 200
FLUSH_INTERVAL_S = 1.0
FINAL_FLUSH_TIMEOUT_S = 2.0

MetricRow = tuple[str, float, JsonObject]
"""``(metric name, value, labels)``: one row of ``metrics`` (labels go to its ``metadata``)."""
ErrorRow = tuple[str, str, str | None, JsonObject]
"""``(error type, message, stack, context)``: one row of ``error_log``."""
_Row = TypeVar("_Row", MetricRow, ErrorRow)


class TelemetryStore(Protocol):
    """Where the queued rows go (`LearningStore` implements it)."""

    async def record_telemetry(self, metrics: Sequence[MetricRow], errors: Sequence[ErrorRow]) -> None: ...


class _Summary:
    __slots__ = ("count", "recent", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.recent: deque[float] = deque(maxlen=RESERVOIR)


class Telemetry:
    """In-memory aggregates for ``/metrics`` and a bounded queue of rows for the database (no I/O here)."""

    def __init__(self, *, queue_limit: int = QUEUE_LIMIT) -> None:
        self._counters: dict[str, dict[Labels, float]] = {}
        self._summaries: dict[str, dict[Labels, _Summary]] = {}
        self._metrics: deque[MetricRow] = deque(maxlen=queue_limit)
        self._errors: deque[ErrorRow] = deque(maxlen=queue_limit)
        self._batch_ready = anyio.Event()

    def observe(self, name: str, value: float, **labels: str) -> None:
        """One value (a latency in ms) of the summary `name`; queued for ``metrics`` as well."""
        summary = self._summaries.setdefault(_checked(name), {}).setdefault(_key(labels), _Summary())
        summary.count += 1
        summary.total += value
        summary.recent.append(value)
        self._enqueue(self._metrics, (name, value, dict(labels)))

    def count(self, name: str, **labels: str) -> None:
        """One event of the counter `name` (``..._total``); queued for ``metrics`` as a value of 1."""
        if not name.endswith("_total"):
            raise ValueError(f"a counter's name ends in _total: {name!r}")
        self._increment(name, labels)
        self._enqueue(self._metrics, (name, 1.0, dict(labels)))

    def error(self, error_type: str, message: str, stack: str | None = None, **context: Any) -> None:
        """One error, queued for ``error_log`` and counted in ``pml_errors_total{type=...}``."""
        self._increment(ERRORS, {"type": error_type})
        self._enqueue(self._errors, (error_type, message, stack, {k: _json_safe(v) for k, v in context.items()}))

    @contextmanager
    def timed(self, name: str, **labels: str) -> Iterator[dict[str, str]]:
        """Observe the block's wall time in ms under `name`, with `labels` as the block leaves them (a block
        that starts with ``outcome="error"`` and sets ``"ok"`` at its end is counted an error if it raises)."""
        current = dict(labels)
        started = time.perf_counter()
        try:
            yield current
        finally:
            self.observe(name, ms_since(started), **current)

    def snapshot(self) -> list[Family]:
        """The aggregates as plain data, for `render`."""
        families = [
            Family(name, HELP.get(name, name), "counter",
                   tuple(CounterSeries(labels, value) for labels, value in series.items()))
            for name, series in self._counters.items()
        ]
        for name, summaries in self._summaries.items():
            series = tuple(_summary_series(labels, summary) for labels, summary in summaries.items())
            families.append(Family(name, HELP.get(name, name), "summary", series))
        return families

    def prometheus(self) -> str:
        """The aggregates in the Prometheus text exposition format (what ``GET /metrics`` serves)."""
        return render(self.snapshot())

    @property
    def pending(self) -> int:
        """Rows waiting to be written."""
        return len(self._metrics) + len(self._errors)

    async def run(
        self, store: TelemetryStore, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Write the queue to `store` every `FLUSH_INTERVAL_S`, or as soon as `BATCH_ROWS` wait; runs until
        cancelled, then writes what is left (shielded, bounded)."""
        task_status.started()
        try:
            while True:
                with anyio.move_on_after(FLUSH_INTERVAL_S):
                    await self._batch_ready.wait()
                self._batch_ready = anyio.Event()
                await self.flush(store)
        finally:
            await self.close(store)

    async def close(self, store: TelemetryStore) -> None:
        """Write what is left, shielded from cancellation and bounded by `FINAL_FLUSH_TIMEOUT_S` (at shutdown)."""
        with anyio.CancelScope(shield=True), anyio.move_on_after(FINAL_FLUSH_TIMEOUT_S):
            await self.flush(store)

    async def flush(self, store: TelemetryStore) -> None:
        """Write every queued row, `BATCH_ROWS` at a time; a batch the database refuses is logged and dropped,
        one it cannot take now (unreachable) goes back to the queue for the next flush."""
        while self._metrics or self._errors:
            metrics, errors = _take(self._metrics), _take(self._errors)
            try:
                await store.record_telemetry(metrics, errors)
            except DatabaseUnavailableError:
                self._requeue(self._metrics, metrics)
                self._requeue(self._errors, errors)
                return
            except GatewayError as exc:
                logger.warning("could not write %d telemetry rows: %s", len(metrics) + len(errors), exc)
                self._increment(DROPPED, {"reason": "write_failed"}, by=len(metrics) + len(errors))
                return

    def _increment(self, name: str, labels: dict[str, str], *, by: float = 1.0) -> None:
        series = self._counters.setdefault(_checked(name), {})
        key = _key(labels)
        series[key] = series.get(key, 0.0) + by

    def _requeue(self, queue: deque[_Row], rows: list[_Row]) -> None:
        """Put `rows` back at the head of `queue`; past its bound the oldest go, counted as dropped."""
        room = (queue.maxlen or len(rows)) - len(queue)
        kept = rows[max(0, len(rows) - room):]
        if len(kept) < len(rows):
            self._increment(DROPPED, {"reason": "queue_full"}, by=len(rows) - len(kept))
        queue.extendleft(reversed(kept))

    def _enqueue(self, queue: deque[_Row], row: _Row) -> None:
        if len(queue) == queue.maxlen:
            self._increment(DROPPED, {"reason": "queue_full"})
        queue.append(row)
        if len(queue) >= BATCH_ROWS:
            self._batch_ready.set()


def _take(queue: deque[_Row]) -> list[_Row]:
    """The oldest `BATCH_ROWS` rows of `queue`, taken out of it."""
    return [queue.popleft() for _ in range(min(BATCH_ROWS, len(queue)))]


def _json_safe(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


def ms_since(started: float) -> float:
    """Milliseconds elapsed since `started`, a `time.perf_counter` reading."""
    return (time.perf_counter() - started) * 1000.0


def _summary_series(labels: Labels, summary: _Summary) -> SummarySeries:
    ordered = sorted(summary.recent)
    return SummarySeries(labels, summary.count, summary.total, tuple((q, quantile(ordered, q)) for q in QUANTILES))


def _key(labels: dict[str, str]) -> Labels:
    return tuple(sorted((key, str(value)) for key, value in labels.items()))


def _checked(name: str) -> str:
    """`name` if Prometheus accepts it; a bad name is a bug of the caller, so it fails loudly in tests."""
    if not METRIC_NAME_RE.match(name):
        raise ValueError(f"not a Prometheus metric name: {name!r}")
    return name
