"""The workflow store keeps DAGs, the last five checkpoints, finished runs and episodic events, in order."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from psycopg.rows import dict_row, scalar_row

from gateway.db import WorkflowStore, migrate
from gateway.db.migrate import MIGRATIONS_DIR
from gateway.errors import DatabaseError
from gateway.models import EpisodicEvent

pytestmark = pytest.mark.anyio

EXPIRE = "UPDATE workflow_dags SET expires_at = now() - interval '1 second' WHERE workflow_id = %s"
CHECKPOINTS = "SELECT layer FROM workflow_checkpoint WHERE workflow_id = %s ORDER BY timestamp, layer"
TABLE = "SELECT to_regclass(%s)::text"


def run(url: str, sql: Any, *params: object) -> list[Any]:
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.cursor(row_factory=scalar_row).execute(sql, params or None)
        return cursor.fetchall() if cursor.description else []


def state(workflow_id: str, status: str, layer: int = 0) -> dict[str, Any]:
    return {"workflow_id": workflow_id, "status": status, "next_layer": layer, "results": []}


async def submitted(store: WorkflowStore, workflow_id: str, status: str) -> None:
    await store.save_dag(workflow_id, {"tasks": []}, intent=None, owner=None)
    await store.save_checkpoint(workflow_id, 0, state(workflow_id, status))


async def test_0002_applies_after_0001_and_a_second_migrate_applies_nothing(
    database_url: str, tmp_path: Path
) -> None:
    first = tmp_path / "m"
    first.mkdir()
    shutil.copy(MIGRATIONS_DIR / "0001_tool_index.sql", first)
    assert await migrate(database_url, first) == ["0001_tool_index"]
    assert (await migrate(database_url))[0] == "0002_workflows"
    assert await migrate(database_url) == []
    for table in ("workflow_dags", "workflow_checkpoint", "workflow_execution", "episodic_events"):
        assert run(database_url, TABLE, table) == [table]


async def test_a_saved_dag_reads_back_and_a_resave_replaces_it(workflow_store: WorkflowStore) -> None:
    assert await workflow_store.get_dag("wf") is None
    await workflow_store.save_dag("wf", {"tasks": [{"id": "a"}]}, intent="first", owner="me")
    await workflow_store.save_dag("wf", {"tasks": [{"id": "b"}]}, intent="replanned", owner="me")
    assert await workflow_store.get_dag("wf") == {"tasks": [{"id": "b"}]}


async def test_only_the_newest_five_checkpoints_are_kept_and_the_latest_is_the_newest(
    workflow_store: WorkflowStore, database_url: str
) -> None:
    assert await workflow_store.latest_checkpoint("wf") is None
    for layer in range(8):
        await workflow_store.save_checkpoint("wf", layer, state("wf", "running", layer))
    await workflow_store.save_checkpoint("other", 0, state("other", "running"))
    assert run(database_url, CHECKPOINTS, "wf") == [3, 4, 5, 6, 7]
    assert run(database_url, CHECKPOINTS, "other") == [0]
    assert await workflow_store.latest_checkpoint("wf") == state("wf", "running", 7)


async def test_checkpoints_of_the_same_moment_are_ordered_by_layer(
    workflow_store: WorkflowStore, database_url: str
) -> None:
    insert = "INSERT INTO workflow_checkpoint (workflow_id, timestamp, layer, state) VALUES ('wf', %s, %s, %s)"
    moment = "2026-01-01T00:00:00Z"
    for layer in (2, 3, 1):
        run(database_url, insert, moment, layer, psycopg.types.json.Jsonb({"layer": layer}))
    assert await workflow_store.latest_checkpoint("wf") == {"layer": 3}


async def test_a_negative_layer_is_a_database_error_and_stores_nothing(
    workflow_store: WorkflowStore, database_url: str
) -> None:
    with pytest.raises(DatabaseError, match=r"checkpointing workflow 'wf' failed: .*layer_check"):
        await workflow_store.save_checkpoint("wf", -1, state("wf", "running"))
    assert run(database_url, CHECKPOINTS, "wf") == []
    await workflow_store.save_checkpoint("wf", 0, state("wf", "running"))  # the pooled connection still works
    assert run(database_url, CHECKPOINTS, "wf") == [0]


async def test_unfinished_returns_running_workflows_only_not_completed_or_paused_ones(
    workflow_store: WorkflowStore,
) -> None:
    await submitted(workflow_store, "running", "running")
    await submitted(workflow_store, "completed", "completed")
    await submitted(workflow_store, "paused", "approval_required")
    await submitted(workflow_store, "finished_since", "running")
    await workflow_store.save_checkpoint("finished_since", 1, state("finished_since", "completed", 1))
    await workflow_store.save_checkpoint("no_dag", 0, state("no_dag", "running"))
    await workflow_store.save_dag("no_checkpoint", {"tasks": []}, intent=None, owner=None)
    assert await workflow_store.unfinished() == [state("running", "running")]


async def test_an_expired_workflow_is_not_unfinished_until_its_dag_is_saved_again(
    workflow_store: WorkflowStore, database_url: str
) -> None:
    await submitted(workflow_store, "old", "running")
    await submitted(workflow_store, "new", "running")
    run(database_url, EXPIRE, "old")
    assert await workflow_store.unfinished() == [state("new", "running")]
    await workflow_store.save_dag("old", {"tasks": []}, intent=None, owner=None)
    assert [doc["workflow_id"] for doc in await workflow_store.unfinished()] == ["old", "new"]


async def test_recorded_executions_are_counted_per_workflow_and_read_back(
    workflow_store: WorkflowStore, database_url: str
) -> None:
    assert await workflow_store.execution_count() == 0
    for success, wf in ((True, "a"), (False, "a"), (True, "b")):
        await workflow_store.record_execution(
            workflow_id=wf, intent=f"do {wf}", dag={"tasks": [wf]}, success=success,
            execution_time_ms=12, error=None if success else "t1: boom",
        )
    assert await workflow_store.execution_count() == 3
    assert (await workflow_store.execution_count("a"), await workflow_store.execution_count("c")) == (2, 0)
    with psycopg.connect(database_url, row_factory=dict_row) as conn:
        rows = conn.execute(
            "SELECT intent_text, dag_structure, success, execution_time_ms, error_message "
            "FROM workflow_execution WHERE workflow_id = 'a' ORDER BY success"
        ).fetchall()
    assert rows == [
        {"intent_text": "do a", "dag_structure": {"tasks": ["a"]}, "success": False, "execution_time_ms": 12,
         "error_message": "t1: boom"},
        {"intent_text": "do a", "dag_structure": {"tasks": ["a"]}, "success": True, "execution_time_ms": 12,
         "error_message": None},
    ]


async def test_recorded_events_read_back_in_the_order_they_were_recorded(workflow_store: WorkflowStore) -> None:
    assert await workflow_store.events("wf") == []
    batch = [
        EpisodicEvent(workflow_id="wf", event_type=kind, data={"i": i}, task_id=f"t{i}" if i % 2 else None,
                      context_hash="h" if i % 3 else None)
        for i, kind in enumerate(["workflow_start", *["task_complete"] * 48, "workflow_complete"])
    ]
    await workflow_store.record_events(batch[:30])
    await workflow_store.record_events([EpisodicEvent(workflow_id="other", event_type="x", data={})])
    await workflow_store.record_events(batch[30:])
    await workflow_store.record_events([])
    assert await workflow_store.events("wf") == batch
    assert await workflow_store.events("other") == [EpisodicEvent(workflow_id="other", event_type="x", data={})]


async def test_twenty_concurrent_checkpoints_on_twenty_workflows_all_land(workflow_store: WorkflowStore) -> None:
    ids = [f"wf{i:02d}" for i in range(20)]

    async def save(workflow_id: str) -> None:
        await workflow_store.save_dag(workflow_id, {"tasks": []}, intent=None, owner=None)
        await workflow_store.save_checkpoint(workflow_id, 1, state(workflow_id, "running", 1))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            for workflow_id in ids:
                tg.start_soon(save, workflow_id)
    for workflow_id in ids:
        assert await workflow_store.latest_checkpoint(workflow_id) == state(workflow_id, "running", 1)
    assert sorted(doc["workflow_id"] for doc in await workflow_store.unfinished()) == ids
