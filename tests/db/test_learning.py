"""The learning store promotes edges after three sightings, loses no concurrent sighting, and finds tools by words."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from psycopg.rows import dict_row

from gateway.db import LearningStore, ToolStore, migrate, open_pool
from gateway.db.learning import OUTCOME_WINDOW, ConfigRow, EdgeRow, ThresholdRow
from gateway.db.migrate import MIGRATIONS_DIR
from gateway.errors import DatabaseError

pytestmark = pytest.mark.anyio

WEIGHTS = {"dependency": 1.0, "contains": 0.8, "provides": 0.7, "sequence": 0.5}
FACTORS = {"observed": 1.0, "inferred": 0.7, "template": 0.5}
TABLE = "SELECT to_regclass(%s)::text AS name"
INSERT_EDGE = (
    "INSERT INTO tool_dependency (from_tool_id, to_tool_id, edge_type, confidence_score, source) "
    "VALUES (%s, %s, %s, %s, %s)"
)


def rows(url: str, sql: Any, *params: object) -> list[dict[str, Any]]:
    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        cursor = conn.execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


async def record(store: LearningStore, edges: list[tuple[str, str, str]], **kwargs: Any) -> None:
    await store.record_run(edges=edges, tools=kwargs.pop("tools", []), weights=WEIGHTS, factors=FACTORS, **kwargs)


async def edges(store: LearningStore) -> list[EdgeRow]:
    """The stored edges, confidence rounded (a REAL holds about 7 digits)."""
    return [replace(row, confidence_score=round(row.confidence_score, 5)) for row in await store.edges()]


def edge(src: str, dst: str, edge_type: str, count: int, confidence: float, source: str) -> EdgeRow:
    return EdgeRow(src, dst, edge_type, count, round(confidence, 5), source)


async def test_0003_applies_after_0002_over_tools_listed_before_it(
    database_url: str, tmp_path: Path
) -> None:
    earlier = tmp_path / "m"
    earlier.mkdir()
    for name in ("0001_tool_index.sql", "0002_workflows.sql"):
        shutil.copy(MIGRATIONS_DIR / name, earlier)
    assert await migrate(database_url, earlier) == ["0001_tool_index", "0002_workflows"]
    # A tool listed under the 0001 schema (written as it was then: today's ToolStore writes later columns too).
    rows(database_url, "INSERT INTO tool_schema (tool_id, server_id, name, description, input_schema, schema_hash) "
                       "VALUES ('books:calculateNetIncome', 'books', 'calculateNetIncome', '', '{}', 'h')")
    pool = await open_pool(database_url, max_size=2)
    try:
        assert (await migrate(database_url))[0] == "0003_learning"
        assert await ToolStore(pool).count_by_server() == {"books": (1, 0)}
    finally:
        await pool.close()
    for table in ("tool_dependency", "tool_usage", "adaptive_config", "adaptive_thresholds", "metrics", "error_log"):
        assert rows(database_url, TABLE, table) == [{"name": table}]


async def test_an_edge_seen_twice_stays_inferred_and_the_third_sighting_makes_it_observed(
    learning_store: LearningStore,
) -> None:
    run = [("a", "b", "dependency"), ("a", "b", "sequence")]
    await record(learning_store, run)
    await record(learning_store, run)
    assert await edges(learning_store) == [
        edge("a", "b", "dependency", 2, 1.0 * 0.7, "inferred"), edge("a", "b", "sequence", 2, 0.5 * 0.7, "inferred"),
    ]
    await record(learning_store, run)
    assert await edges(learning_store) == [
        edge("a", "b", "dependency", 3, 1.0, "observed"), edge("a", "b", "sequence", 3, 0.5, "observed"),
    ]


async def test_promote_after_one_makes_a_new_edge_observed_at_once(learning_store: LearningStore) -> None:
    await record(learning_store, [("a", "b", "contains")], promote_after=1)
    assert await edges(learning_store) == [edge("a", "b", "contains", 1, 0.8, "observed")]


async def test_user_and_template_edges_keep_their_source_and_a_user_edge_its_confidence(
    learning_store: LearningStore, database_url: str
) -> None:
    rows(database_url, INSERT_EDGE, "u", "v", "dependency", 0.9, "user")
    rows(database_url, INSERT_EDGE, "t", "v", "sequence", 0.1, "template")
    for _ in range(4):
        await record(learning_store, [("u", "v", "dependency"), ("t", "v", "sequence")])
    assert await edges(learning_store) == [
        edge("t", "v", "sequence", 5, 0.5 * 0.5, "template"), edge("u", "v", "dependency", 5, 0.9, "user"),
    ]


async def test_tool_usage_counts_calls_successes_and_time(learning_store: LearningStore, database_url: str) -> None:
    await record(learning_store, [], tools=[("fs:read", True, 10.4), ("fs:write", False, 5.0)])
    await record(learning_store, [], tools=[("fs:read", False, 20.0), ("fs:read", True, 1.0)])
    assert await learning_store.usage() == {"fs:read": (3, 2), "fs:write": (1, 0)}
    assert rows(database_url, "SELECT total_ms FROM tool_usage WHERE tool_id = 'fs:read'") == [{"total_ms": 31}]


async def test_twenty_concurrent_runs_on_the_same_edges_lose_no_sighting_and_do_not_deadlock(
    learning_store: LearningStore, database_url: str
) -> None:
    pool = await open_pool(database_url, max_size=20)
    store = LearningStore(pool)
    forward = [("a", "b", "sequence"), ("b", "c", "dependency")]

    async def one(i: int) -> None:
        tools = [("a", True, 1.0), ("b", i % 2 == 0, 1.0)]
        await record(store, forward if i % 2 else forward[::-1], tools=tools if i % 2 else tools[::-1])

    try:
        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(20):
                    tg.start_soon(one, i)
    finally:
        await pool.close()
    assert await edges(learning_store) == [
        edge("a", "b", "sequence", 20, 0.5, "observed"), edge("b", "c", "dependency", 20, 1.0, "observed"),
    ]
    assert await learning_store.usage() == {"a": (20, 20), "b": (20, 10)}


async def test_a_failing_run_records_nothing_of_itself(learning_store: LearningStore) -> None:
    with pytest.raises(DatabaseError, match=r"recording a run \(1 edges, 1 tool calls\) failed: .*out of range"):
        await record(learning_store, [("a", "b", "sequence")], tools=[("a", True, 1e30)])
    assert await learning_store.edges() == []
    assert await learning_store.usage() == {}


async def test_a_missing_weight_or_factor_is_refused_before_any_write(learning_store: LearningStore) -> None:
    with pytest.raises(ValueError, match=r"edge types \['unknown'\]"):
        await record(learning_store, [("a", "b", "unknown")])
    with pytest.raises(ValueError, match=r"sources \['observed'\]"):
        await learning_store.record_run(edges=[("a", "b", "sequence")], tools=[], weights=WEIGHTS,
                                        factors={"inferred": 0.7})
    assert await learning_store.edges() == []


async def test_thresholds_round_trip_and_keep_only_the_newest_outcomes(learning_store: LearningStore) -> None:
    assert await learning_store.threshold("ctx") is None
    first = ThresholdRow(context_hash="ctx", context_keys={"domain": "fs"})
    await learning_store.save_threshold(first)
    assert await learning_store.threshold("ctx") == first
    outcomes = [{"confidence": i / 100, "accepted": i % 2 == 0} for i in range(60)]
    later = ThresholdRow(
        context_hash="ctx", context_keys={"domain": "fs"}, suggestion_threshold=0.75, explicit_threshold=0.45,
        success_rate=0.5, sample_count=60, outcomes=outcomes,
    )
    await learning_store.save_threshold(later)
    saved = await learning_store.threshold("ctx")
    assert saved is not None and saved.outcomes == outcomes[-OUTCOME_WINDOW:]
    assert saved.suggestion_threshold == pytest.approx(0.75) and saved.explicit_threshold == pytest.approx(0.45)
    assert saved == replace(
        later, suggestion_threshold=saved.suggestion_threshold, explicit_threshold=saved.explicit_threshold,
        outcomes=outcomes[-OUTCOME_WINDOW:],
    )


async def test_config_values_round_trip(learning_store: LearningStore) -> None:
    assert await learning_store.get_config("threshold_speculative") is None
    await learning_store.set_config("threshold_speculative", 0.7, 0)
    await learning_store.set_config("threshold_speculative", 0.75, 12)
    saved = await learning_store.get_config("threshold_speculative")
    assert saved is not None and saved.config_value == pytest.approx(0.75)  # a REAL: about 7 digits
    assert saved == ConfigRow("threshold_speculative", saved.config_value, 12)


async def test_metrics_and_errors_are_stored(learning_store: LearningStore, database_url: str) -> None:
    await learning_store.record_metric("query_latency_ms", 12.5, {"tool": "fs:read"})
    await learning_store.record_metric("context_usage_pct", 3.0)
    await learning_store.record_error("GraphRAG", "pagerank diverged", "Traceback ...", {"nodes": 3})
    await learning_store.record_error("Sandbox", "timeout")
    assert rows(database_url, "SELECT metric_name, value, metadata FROM metrics ORDER BY id") == [
        {"metric_name": "query_latency_ms", "value": 12.5, "metadata": {"tool": "fs:read"}},
        {"metric_name": "context_usage_pct", "value": 3.0, "metadata": None},
    ]
    assert rows(database_url, "SELECT error_type, message, stack, context FROM error_log ORDER BY id") == [
        {"error_type": "GraphRAG", "message": "pagerank diverged", "stack": "Traceback ...", "context": {"nodes": 3}},
        {"error_type": "Sandbox", "message": "timeout", "stack": None, "context": None},
    ]


async def test_concurrent_threshold_updates_from_two_gateways_lose_no_outcome(
    learning_store: LearningStore, database_url: str
) -> None:
    def add(number: int) -> Any:
        def change(row: ThresholdRow | None) -> ThresholdRow:
            row = row or ThresholdRow(context_hash="shared", context_keys={})
            return replace(row, outcomes=[*row.outcomes, number], sample_count=row.sample_count + 1)
        return change

    other_pool = await open_pool(database_url, max_size=10)
    try:
        other = LearningStore(other_pool)
        async with anyio.create_task_group() as tg:
            for number in range(20):
                tg.start_soon((learning_store if number % 2 else other).update_threshold, "shared", add(number))
    finally:
        await other_pool.close()
    saved = await learning_store.threshold("shared")
    assert saved is not None and saved.sample_count == 20 and sorted(saved.outcomes) == list(range(20))
