"""Telemetry: aggregates rendered as exact Prometheus text, escaping, the bounded queue written to Postgres."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, LiteralString

import anyio
import pytest

from gateway.db import LearningStore, Pool, open_pool
from gateway.services.prometheus import CounterSeries, Family, SummarySeries, format_value, quantile, render
from gateway.services.telemetry import (
    BATCH_ROWS,
    CALL_LATENCY,
    SEARCH_LATENCY,
    WORKFLOWS,
    Telemetry,
)


class WatchedStore(LearningStore):
    """The real store, with an event set after each batch it writes."""

    def __init__(self, pool: Pool) -> None:
        super().__init__(pool)
        self.written = anyio.Event()

    async def record_telemetry(
        self, metrics: Sequence[tuple[str, float, dict[str, Any] | None]],
        errors: Sequence[tuple[str, str, str | None, dict[str, Any] | None]],
    ) -> None:
        await super().record_telemetry(metrics, errors)
        self.written.set()


async def stored(pool: Pool, query: LiteralString) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        return await (await conn.execute(query)).fetchall()


def test_counters_and_summaries_render_as_exact_prometheus_text() -> None:
    telemetry = Telemetry()
    for value in (40.0, 10.0, 30.0, 20.0):
        telemetry.observe(SEARCH_LATENCY, value)
    telemetry.observe(CALL_LATENCY, 12.5, tool="time:get_current_time", outcome="ok")
    telemetry.count(WORKFLOWS, status="failed")
    telemetry.count(WORKFLOWS, status="completed")
    telemetry.count(WORKFLOWS, status="completed")
    assert telemetry.prometheus() == (
        "# HELP pml_search_latency_ms search_tools latency in milliseconds\n"
        "# TYPE pml_search_latency_ms summary\n"
        'pml_search_latency_ms{quantile="0.5"} 20\n'
        'pml_search_latency_ms{quantile="0.95"} 40\n'
        'pml_search_latency_ms{quantile="0.99"} 40\n'
        "pml_search_latency_ms_sum 100\n"
        "pml_search_latency_ms_count 4\n"
        "# HELP pml_tool_call_latency_ms Downstream tool call latency in milliseconds, by tool and outcome "
        "(ok or error)\n"
        "# TYPE pml_tool_call_latency_ms summary\n"
        'pml_tool_call_latency_ms{outcome="ok",tool="time:get_current_time",quantile="0.5"} 12.5\n'
        'pml_tool_call_latency_ms{outcome="ok",tool="time:get_current_time",quantile="0.95"} 12.5\n'
        'pml_tool_call_latency_ms{outcome="ok",tool="time:get_current_time",quantile="0.99"} 12.5\n'
        'pml_tool_call_latency_ms_sum{outcome="ok",tool="time:get_current_time"} 12.5\n'
        'pml_tool_call_latency_ms_count{outcome="ok",tool="time:get_current_time"} 1\n'
        "# HELP pml_workflows_total Finished workflows, by status\n"
        "# TYPE pml_workflows_total counter\n"
        'pml_workflows_total{status="completed"} 2\n'
        'pml_workflows_total{status="failed"} 1\n'
    )


def test_label_values_escape_backslashes_quotes_and_newlines_and_help_escapes_its_own() -> None:
    family = Family("pml_things_total", 'Things\\counted "here"\nand there', "counter",
                    (CounterSeries((("path", 'C:\\dir\\"a"\nb'),), 3.0),))
    assert render([family]) == (
        '# HELP pml_things_total Things\\\\counted "here"\\nand there\n'
        "# TYPE pml_things_total counter\n"
        'pml_things_total{path="C:\\\\dir\\\\\\"a\\"\\nb"} 3\n'
    )


def test_an_error_is_counted_by_type_and_queued_for_the_error_log() -> None:
    telemetry = Telemetry()
    telemetry.error("CallTimeoutError", "time did not answer", None, tool="time:get_current_time")
    telemetry.error("CallTimeoutError", "again", "Traceback ...")
    assert 'pml_errors_total{type="CallTimeoutError"} 2\n' in telemetry.prometheus()
    assert telemetry.pending == 2


def test_values_render_as_prometheus_reads_them_and_quantiles_take_the_nearest_rank() -> None:
    assert [format_value(v) for v in (3.0, 0.25, float("inf"), float("-inf"), float("nan"))] == [
        "3", "0.25", "+Inf", "-Inf", "NaN"]
    assert [quantile([1.0, 2.0, 3.0, 4.0, 5.0], q) for q in (0.0, 0.5, 0.95, 1.0)] == [1.0, 3.0, 5.0, 5.0]
    empty = Family("pml_x_ms", "x", "summary", (SummarySeries((), 0, 0.0, ((0.5, quantile([], 0.5)),)),))
    assert 'pml_x_ms{quantile="0.5"} NaN\n' in render([empty])


def test_a_bad_metric_name_or_a_counter_without_total_is_refused() -> None:
    telemetry = Telemetry()
    with pytest.raises(ValueError, match="metric name"):
        telemetry.observe("pml search", 1.0)
    with pytest.raises(ValueError, match="_total"):
        telemetry.count("pml_workflows")


def test_a_failing_block_is_timed_with_the_error_outcome() -> None:
    telemetry = Telemetry()
    with pytest.raises(RuntimeError), telemetry.timed(CALL_LATENCY, tool="a:b", outcome="error") as labels:
        raise RuntimeError("boom")
    with telemetry.timed(CALL_LATENCY, tool="a:b", outcome="error") as labels:
        labels["outcome"] = "ok"
    text = telemetry.prometheus()
    assert 'pml_tool_call_latency_ms_count{outcome="error",tool="a:b"} 1\n' in text
    assert 'pml_tool_call_latency_ms_count{outcome="ok",tool="a:b"} 1\n' in text


@pytest.mark.anyio
async def test_a_full_queue_drops_its_oldest_rows_and_counts_them(pool: Pool) -> None:
    telemetry = Telemetry(queue_limit=3)
    for n in range(5):
        telemetry.count(WORKFLOWS, status=f"s{n}")
    await telemetry.flush(LearningStore(pool))
    rows = await stored(pool, "SELECT metadata ->> 'status' FROM metrics ORDER BY id")
    assert rows == [("s2",), ("s3",), ("s4",)]
    assert 'pml_telemetry_dropped_total{reason="queue_full"} 2\n' in telemetry.prometheus()
    assert 'pml_workflows_total{status="s0"} 1\n' in telemetry.prometheus()


@pytest.mark.anyio
async def test_a_refused_batch_is_logged_dropped_and_counted(
    caplog: pytest.LogCaptureFixture, pool: Pool, database_url: str
) -> None:
    telemetry = Telemetry()
    telemetry.observe(SEARCH_LATENCY, 5.0)
    telemetry.error("DatabaseError", "down")
    gone = await open_pool(database_url, max_size=1)
    await gone.close()  # a database that cannot be reached: every write fails
    with caplog.at_level(logging.WARNING, logger="gateway.services.telemetry"):
        await telemetry.flush(LearningStore(gone))
    assert "could not write 2 telemetry rows" in caplog.text
    assert 'pml_telemetry_dropped_total{reason="write_failed"} 2\n' in telemetry.prometheus()
    assert telemetry.pending == 0


@pytest.mark.anyio
async def test_the_flusher_writes_a_full_batch_at_once_and_the_rest_when_cancelled(pool: Pool) -> None:
    telemetry, store = Telemetry(), WatchedStore(pool)
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            await tg.start(telemetry.run, store)
            for n in range(BATCH_ROWS):
                telemetry.observe(SEARCH_LATENCY, float(n))
            await store.written.wait()
            assert await stored(pool, "SELECT count(*) FROM metrics") == [(BATCH_ROWS,)]
            telemetry.error("InvalidRequestError", "bad field", None, field="limit")
            tg.cancel_scope.cancel()
    errors = await stored(pool, "SELECT error_type, message, stack, context FROM error_log")
    assert errors == [("InvalidRequestError", "bad field", None, {"field": "limit"})]
    assert telemetry.pending == 0
