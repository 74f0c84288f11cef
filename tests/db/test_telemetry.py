"""Telemetry on a real Postgres: the flusher writes metrics and errors, and the store sums them up by series."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
import psycopg
import pytest
from psycopg.rows import dict_row

from gateway.db import LearningStore
from gateway.services.telemetry import CALL_LATENCY, SEARCH_LATENCY, WORKFLOWS, Telemetry
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

METRICS = "SELECT metric_name, value, metadata FROM metrics ORDER BY id"
ERRORS = "SELECT error_type, message, stack, context FROM error_log ORDER BY id"


def rows(url: str, sql: Any) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        return conn.execute(sql).fetchall()


async def test_the_flusher_writes_the_queued_metrics_and_errors_while_it_runs(
    learning_store: LearningStore, database_url: str
) -> None:
    telemetry = Telemetry()
    async with anyio.create_task_group() as tg:
        await tg.start(telemetry.run, learning_store)
        telemetry.observe(SEARCH_LATENCY, 12.5)
        telemetry.observe(CALL_LATENCY, 3.0, tool="time:get_current_time", outcome="ok")
        telemetry.count(WORKFLOWS, status="completed")
        telemetry.error("CallTimeoutError", "time did not answer", "Traceback ...", tool="time:get_current_time")
        # a table sends no event when written: poll it
        await eventually(lambda: len(rows(database_url, METRICS)) >= 3 and bool(rows(database_url, ERRORS)),
                         timeout_s=10, interval_s=0.1, what="three metrics and an error written")
        tg.cancel_scope.cancel()
    assert rows(database_url, METRICS) == [
        {"metric_name": SEARCH_LATENCY, "value": 12.5, "metadata": {}},
        {"metric_name": CALL_LATENCY, "value": 3.0, "metadata": {"tool": "time:get_current_time", "outcome": "ok"}},
        {"metric_name": WORKFLOWS, "value": 1.0, "metadata": {"status": "completed"}},
    ]
    assert rows(database_url, ERRORS) == [{"error_type": "CallTimeoutError", "message": "time did not answer",
                                           "stack": "Traceback ...", "context": {"tool": "time:get_current_time"}}]


async def test_what_is_left_is_written_when_the_flusher_is_cancelled(
    learning_store: LearningStore, database_url: str
) -> None:
    telemetry = Telemetry()
    async with anyio.create_task_group() as tg:
        await tg.start(telemetry.run, learning_store)
        for value in (1.0, 2.0, 3.0):
            telemetry.observe(SEARCH_LATENCY, value)
        tg.cancel_scope.cancel()
    assert [r["value"] for r in rows(database_url, METRICS)] == [1.0, 2.0, 3.0]


async def test_metric_stats_sum_up_each_series_of_the_window_and_errors_are_counted_by_type(
    learning_store: LearningStore,
) -> None:
    metrics = [(SEARCH_LATENCY, float(v), {}) for v in (10, 20, 30, 40)]
    metrics += [(CALL_LATENCY, 8.0, {"tool": "a:b", "outcome": "ok"}), (CALL_LATENCY, 2.0, {"tool": "a:b",
                "outcome": "error"})]
    errors = [("CallTimeoutError", "late", None, {}), ("CallTimeoutError", "late", None, {}),
              ("InvalidRequestError", "bad", None, None)]
    await learning_store.record_telemetry(metrics, errors)
    found = await learning_store.metric_stats(timedelta(hours=1))
    stats = {(s.name, tuple(sorted(s.labels.items()))): s for s in found}
    search = stats[(SEARCH_LATENCY, ())]
    assert (search.count, search.avg, search.p50, search.p95, search.max) == (4, 25.0, 25.0, 38.5, 40.0)
    assert stats[(CALL_LATENCY, (("outcome", "error"), ("tool", "a:b")))].max == 2.0
    assert len(stats) == 3
    counts = [(e.error_type, e.count) for e in await learning_store.error_counts(timedelta(hours=1))]
    assert counts == [("CallTimeoutError", 2), ("InvalidRequestError", 1)]
    assert await learning_store.metric_stats(timedelta(0)) == []
