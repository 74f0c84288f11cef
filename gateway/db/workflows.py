"""Workflow persistence in Postgres: `WorkflowStore` implements `gateway.ports.WorkflowStore` over the pool.

A submitted DAG lives in ``workflow_dags`` for `DAG_TTL` after its last save. At each layer boundary the
executor saves a checkpoint; one transaction inserts it and prunes the workflow's older ones down to
`KEPT_CHECKPOINTS`. Between checkpoints each task's result is saved as the task finishes (one row), and a state
read back carries the results saved after its checkpoint. After a restart, `unfinished` hands back the newest
state of every unexpired workflow that was cut off while running. Finished runs go to ``workflow_execution``,
episodic events to ``episodic_events`` (in one batch). Every psycopg error surfaces as a `DatabaseError` via
`translated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from psycopg.rows import class_row, scalar_row
from psycopg.types.json import Jsonb

from gateway import ports
from gateway.db.pool import Pool, translated
from gateway.db.queries import query as named_query
from gateway.models import EpisodicEvent, JsonObject

DAG_TTL = timedelta(hours=1)
"""How long a saved DAG stays continuable after its last save (the column default says the same)."""
KEPT_CHECKPOINTS = 5
"""Checkpoints kept per workflow: the newest, and a few before it for inspection."""


class WorkflowStore:
    """`ports.WorkflowStore` over ``workflow_dags``, ``workflow_checkpoint``, ``workflow_execution`` and
    ``episodic_events``."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def save_dag(self, workflow_id: str, dag: JsonObject, *, intent: str | None, owner: str | None) -> None:
        """Store a submitted (or replanned) DAG; either way it expires `DAG_TTL` from now."""
        params = {"workflow_id": workflow_id, "dag": Jsonb(dag), "intent": intent, "owner": owner, "ttl": DAG_TTL}
        async with translated(f"saving the DAG of workflow {workflow_id!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("upsert_dag"), params)

    async def get_dag(self, workflow_id: str) -> JsonObject | None:
        """The saved DAG of `workflow_id`, expired or not; None if none was saved."""
        async with translated(f"reading the DAG of workflow {workflow_id!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            dag: JsonObject | None = await (
                await cursor.execute(named_query("get_dag"), {"workflow_id": workflow_id})
            ).fetchone()
        return dag

    async def save_checkpoint(self, workflow_id: str, layer: int, state: JsonObject) -> None:
        """Store `state` at `layer` and keep only the newest `KEPT_CHECKPOINTS` of the workflow, atomically.

        The four statements (BEGIN, insert, prune, COMMIT) are pipelined, which spares round trips to a remote
        server.
        """
        params = {"workflow_id": workflow_id, "layer": layer, "state": Jsonb(state), "keep": KEPT_CHECKPOINTS}
        async with translated(f"checkpointing workflow {workflow_id!r}"), self._pool.connection() as conn:
            async with conn.pipeline(), conn.transaction():
                await conn.execute(named_query("insert_checkpoint"), params)
                await conn.execute(named_query("prune_checkpoints"), params)

    async def save_task_result(self, workflow_id: str, task_id: str, result: JsonObject) -> None:
        """Store one finished task's result, until its layer's checkpoint holds it (one small row)."""
        params = {"workflow_id": workflow_id, "task_id": task_id, "result": Jsonb(result)}
        async with translated(f"saving task {task_id!r} of workflow {workflow_id!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("save_task_result"), params)

    async def latest_checkpoint(self, workflow_id: str) -> JsonObject | None:
        """The newest checkpointed state of `workflow_id` (by time, then layer) with the results saved since, or
        None."""
        async with translated(f"reading the checkpoint of {workflow_id!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(_Saved))
            saved = await (await cursor.execute(named_query("latest_checkpoint"), {"workflow_id": workflow_id})
                           ).fetchone()
        return None if saved is None else saved.state_now()

    async def unfinished(self) -> list[JsonObject]:
        """The newest state of each unexpired workflow whose last checkpoint says ``"status": "running"``, with
        the results saved since."""
        async with translated("listing unfinished workflows"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(_Saved))
            saved = await (await cursor.execute(named_query("unfinished_states"))).fetchall()
        return [s.state_now() for s in saved]

    async def record_execution(
        self, *, workflow_id: str, intent: str | None, dag: JsonObject, success: bool,
        execution_time_ms: int, error: str | None,
    ) -> None:
        """Record one finished run of `workflow_id`."""
        params = {
            "workflow_id": workflow_id, "intent": intent, "dag": Jsonb(dag), "success": success,
            "execution_time_ms": execution_time_ms, "error": error,
        }
        async with translated(f"recording the run of workflow {workflow_id!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("insert_execution"), params)

    async def record_code_run(
        self, *, workflow_id: str, intent: str | None, structure: JsonObject, success: bool, execution_time_ms: int,
        error: str | None, code: str, code_hash: str, owner: str | None,
    ) -> None:
        """Record one `execute_code` run: its program, the hash of its normal form, and its trace (`structure`)."""
        params = {
            "workflow_id": workflow_id, "intent": intent, "dag": Jsonb(structure), "success": success,
            "execution_time_ms": execution_time_ms, "error": error, "code": code, "code_hash": code_hash,
            "owner": owner,
        }
        async with translated(f"recording the code run {workflow_id!r}"), self._pool.connection() as conn:
            await conn.execute(named_query("insert_code_execution"), params)

    async def code_successes(self, code_hash: str, *, owner: str | None, until: str) -> int:
        """How many runs of the program `code_hash` by `owner` succeeded, up to the run `until`."""
        params = {"code_hash": code_hash, "owner": owner, "workflow_id": until}
        async with translated("counting the runs of a program"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            count = await (await cursor.execute(named_query("code_successes"), params)).fetchone()
        return int(count or 0)

    async def execution_count(self, workflow_id: str | None = None) -> int:
        """How many runs were recorded, of `workflow_id` or of every workflow."""
        async with translated("counting workflow runs"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            count = await (
                await cursor.execute(named_query("execution_count"), {"workflow_id": workflow_id})
            ).fetchone()
        return int(count or 0)

    async def record_events(self, events: Sequence[EpisodicEvent]) -> None:
        """Append `events` in one pipelined, atomic batch; they keep their order (see `events`)."""
        if not events:
            return
        params = [_event_params(event) for event in events]
        async with translated(f"recording {len(params)} episodic events"), self._pool.connection() as conn:
            async with conn.transaction(), conn.cursor() as cursor:
                await cursor.executemany(named_query("insert_event"), params)

    async def events(self, workflow_id: str) -> list[EpisodicEvent]:
        """The episodic events of `workflow_id`, oldest first."""
        async with translated(f"reading the events of workflow {workflow_id!r}"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=class_row(EpisodicEvent))
            await cursor.execute(named_query("workflow_events"), {"workflow_id": workflow_id})
            return await cursor.fetchall()


@dataclass(frozen=True, slots=True)
class _Saved:
    """A checkpointed state and the task results saved after it (or before, and already in it)."""

    state: JsonObject
    finished: list[JsonObject]

    def state_now(self) -> JsonObject:
        """The state with every task result it lacks; a result in the checkpoint wins."""
        results = self.state.get("results", [])
        known = {r["id"] for r in results}
        extra = [r for r in self.finished if r["id"] not in known]
        return {**self.state, "results": [*results, *extra]} if extra else self.state


if TYPE_CHECKING:

    def _is_a_workflow_store(store: WorkflowStore) -> ports.WorkflowStore:
        return store  # mypy checks that WorkflowStore implements the port


def _event_params(event: EpisodicEvent) -> dict[str, Any]:
    return {
        "workflow_id": event.workflow_id, "event_type": event.event_type, "task_id": event.task_id,
        "context_hash": event.context_hash, "data": Jsonb(event.data),
    }
