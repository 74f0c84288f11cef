"""The retention prune deletes what the policies no longer keep, batch by batch, and nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, LiteralString

import pytest
from psycopg.rows import scalar_row
from psycopg.types.json import Jsonb

from gateway.db import Pool, Retention, RetentionStore, WorkflowStore

pytestmark = pytest.mark.anyio

SMALL = Retention(batch=3)
"""The default policies, three rows per transaction: every multi-batch count below exercises the loop."""
NOTHING = {"workflow_dags": 0, "workflow_checkpoint": 0, "workflow_execution": 0, "episodic_events": 0,
           "metrics": 0, "error_log": 0, "http_session": 0, "rate_limit_window": 0, "oauth_pending": 0, "oauth_code": 0,
           "oauth_token": 0}


async def execute(pool: Pool, sql: LiteralString, params: Any = None) -> list[Any]:
    async with pool.connection() as conn:
        cursor = conn.cursor(row_factory=scalar_row)
        await cursor.execute(sql, params)
        return await cursor.fetchall() if cursor.description else []


def ago(days: float) -> timedelta:
    return timedelta(days=days)


async def add_event(pool: Pool, name: str, age: timedelta) -> None:
    await execute(pool, "INSERT INTO episodic_events (workflow_id, event_type, task_id, \"timestamp\", data) "
                        "VALUES ('wf', 'task_end', %s, now() - %s::interval, '{}')", (name, age))


async def add_checkpoint(pool: Pool, workflow_id: str, layer: int, status: str = "running") -> None:
    """Checkpoint `layer` of `workflow_id`, `layer` minutes after its first (higher layers are newer)."""
    state = {"workflow_id": workflow_id, "status": status, "next_layer": layer, "results": []}
    await execute(pool, "INSERT INTO workflow_checkpoint (workflow_id, \"timestamp\", layer, state) "
                        "VALUES (%s, now() - interval '1 hour' + %s * interval '1 minute', %s, %s)",
                  (workflow_id, layer, layer, Jsonb(state)))


async def test_expired_dags_are_deleted_in_several_batches_and_unexpired_ones_stay(
    pool: Pool, workflow_store: WorkflowStore
) -> None:
    for i in range(9):
        await workflow_store.save_dag(f"wf{i}", {"tasks": []}, intent=None, owner=None)
    await execute(pool, "UPDATE workflow_dags SET expires_at = now() - interval '1 second' "
                        "WHERE workflow_id <> ALL(%s)", (["wf2", "wf5"],))
    deleted = await RetentionStore(pool).prune(SMALL)
    assert deleted == {**NOTHING, "workflow_dags": 7}
    assert await execute(pool, "SELECT workflow_id FROM workflow_dags ORDER BY 1") == ["wf2", "wf5"]


async def test_each_workflow_keeps_its_newest_five_checkpoints_and_resumes_from_the_latest(
    pool: Pool, workflow_store: WorkflowStore
) -> None:
    await workflow_store.save_dag("long", {"tasks": []}, intent=None, owner=None)
    for layer in range(9):
        await add_checkpoint(pool, "long", layer)
    for layer in range(6):
        await add_checkpoint(pool, "paused", layer, status="paused")
    for layer in range(2):
        await add_checkpoint(pool, "short", layer)
    deleted = await RetentionStore(pool).prune(SMALL)
    assert deleted == {**NOTHING, "workflow_checkpoint": 5}
    layers = "SELECT layer FROM workflow_checkpoint WHERE workflow_id = %s ORDER BY layer"
    assert await execute(pool, layers, ("long",)) == [4, 5, 6, 7, 8]
    assert await execute(pool, layers, ("paused",)) == [1, 2, 3, 4, 5]
    assert await execute(pool, layers, ("short",)) == [0, 1]
    assert [doc["next_layer"] for doc in await workflow_store.unfinished()] == [8]
    latest = await workflow_store.latest_checkpoint("paused")
    assert latest is not None and (latest["status"], latest["next_layer"]) == ("paused", 5)


async def test_executions_older_than_six_months_are_deleted(pool: Pool) -> None:
    insert = ("INSERT INTO workflow_execution (workflow_id, executed_at, dag_structure, success, execution_time_ms) "
              "VALUES (%s, now() - %s::interval, '{}', true, 1)")
    for name, days in [("a", 400), ("b", 200), ("c", 184), ("d", 190), ("e", 181), ("f", 30), ("g", 0)]:
        await execute(pool, insert, (name, ago(days)))
    deleted = await RetentionStore(pool).prune(SMALL)
    assert deleted == {**NOTHING, "workflow_execution": 4}
    assert await execute(pool, "SELECT workflow_id FROM workflow_execution ORDER BY 1") == ["e", "f", "g"]


async def test_events_older_than_30_days_go_and_the_rest_is_cut_to_the_newest_rows(pool: Pool) -> None:
    for i, days in enumerate([90, 45, 31, 30.5, 29, 10, 3, 2, 1, 0]):
        await add_event(pool, f"e{i}", ago(days))
    deleted = await RetentionStore(pool).prune(Retention(event_rows=4, batch=3))
    assert deleted == {**NOTHING, "episodic_events": 6}
    assert await execute(pool, "SELECT task_id FROM episodic_events ORDER BY 1") == ["e6", "e7", "e8", "e9"]


async def test_fresh_events_are_kept_up_to_the_row_cap_only(pool: Pool) -> None:
    for i in range(8):
        await add_event(pool, f"e{i}", timedelta(minutes=10 - i))
    store = RetentionStore(pool)
    assert (await store.prune(SMALL))["episodic_events"] == 0
    assert (await store.prune(Retention(event_rows=1, batch=3)))["episodic_events"] == 7
    assert await execute(pool, "SELECT task_id FROM episodic_events") == ["e7"]


async def test_metrics_and_errors_older_than_90_days_are_deleted(pool: Pool) -> None:
    for days in (365, 120, 91, 89, 1):
        await execute(pool, "INSERT INTO metrics (metric_name, value, \"timestamp\") "
                            "VALUES ('latency', %s, now() - %s::interval)", (days, ago(days)))
        await execute(pool, "INSERT INTO error_log (error_type, message, \"timestamp\") "
                            "VALUES ('t', %s, now() - %s::interval)", (str(days), ago(days)))
    deleted = await RetentionStore(pool).prune(SMALL)
    assert deleted == {**NOTHING, "metrics": 3, "error_log": 3}
    assert await execute(pool, "SELECT value::int FROM metrics ORDER BY 1") == [1, 89]
    assert await execute(pool, "SELECT message FROM error_log ORDER BY \"timestamp\"") == ["89", "1"]


async def test_a_second_prune_finds_nothing_left_to_delete(pool: Pool, workflow_store: WorkflowStore) -> None:
    await add_event(pool, "old", ago(40))
    await workflow_store.save_dag("wf", {"tasks": []}, intent=None, owner=None)
    await execute(pool, "UPDATE workflow_dags SET expires_at = now() - interval '1 second'")
    store = RetentionStore(pool)
    assert await store.prune() == {**NOTHING, "workflow_dags": 1, "episodic_events": 1}
    assert await store.prune() == NOTHING


@pytest.mark.parametrize("bad", [{"batch": 0}, {"event_rows": -1}, {"checkpoints_per_workflow": 0}])
def test_a_policy_that_would_delete_everything_or_loop_forever_is_refused(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        Retention(**bad)  # type: ignore[arg-type]


async def test_expired_http_sessions_and_rate_limit_windows_go_and_live_ones_stay(pool: Pool) -> None:
    await execute(pool, "INSERT INTO users (username) VALUES ('u')")
    await execute(pool, "INSERT INTO http_session (session_id, user_id, expires_at) SELECT s, id, now() + d "
                        "FROM users, (VALUES ('old', interval '-1 second'), ('live', interval '1 hour')) v(s, d)")
    await execute(pool, "INSERT INTO rate_limit_window (key_prefix, window_start, count, expires_at) VALUES "
                        "('ac_aaaaaaaa', now() - interval '2 hours', 5, now() - interval '1 hour'), "
                        "('ac_bbbbbbbb', now(), 1, now() + interval '1 hour')")
    deleted = await RetentionStore(pool).prune(Retention(batch=3))
    assert deleted == {**NOTHING, "http_session": 1, "rate_limit_window": 1}
    assert await execute(pool, "SELECT session_id FROM http_session") == ["live"]
    assert await execute(pool, "SELECT key_prefix FROM rate_limit_window") == ["ac_bbbbbbbb"]
