"""Retention in Postgres: `RetentionStore` deletes what the `Retention` policies no longer keep, in batches.

Each policy is one named query of ``queries/retention.sql`` that deletes at most `Retention.batch` rows. The
store repeats it, each batch a short autocommit transaction on a connection taken from the pool and given
back, until a batch deletes fewer rows than asked: no table is locked for long and the gateway's own writes go
on in between. The policies are the design's: episodic events 30 days and at most
10,000 rows, metrics 90 days (error_log too, for which the design says nothing), executions 6 months, the
newest 5 checkpoints of each workflow (so its latest state, from which a paused or cut-off workflow
continues, always stays), expired DAGs, expired HTTP sessions (24 h) and rate-limit windows, and OAuth's
expired pending sign-ins, and codes and tokens a day past their expiry. Every
psycopg error surfaces as a `DatabaseError` via
`translated`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gateway.db.pool import BULK_DEADLINE_S, Pool, translated
from gateway.db.queries import query as named_query
from gateway.db.workflows import KEPT_CHECKPOINTS

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Retention:
    """What the prune keeps: ages, row counts, and how many rows one transaction deletes at most."""

    event_age: timedelta = timedelta(days=30)
    event_rows: int = 10_000
    metric_age: timedelta = timedelta(days=90)
    error_age: timedelta = timedelta(days=90)
    execution_age: timedelta = timedelta(days=183)
    """Six months."""
    checkpoints_per_workflow: int = KEPT_CHECKPOINTS
    batch: int = 1_000

    def __post_init__(self) -> None:
        if self.batch < 1 or self.event_rows < 0:
            raise ValueError(f"batch must be at least 1 and event_rows at least 0: {self}")
        if self.checkpoints_per_workflow < 1:
            raise ValueError("checkpoints_per_workflow must be at least 1: a workflow keeps its latest state")


DEFAULT_RETENTION = Retention()

_Params = Callable[[Retention], dict[str, Any]]
_POLICIES: tuple[tuple[str, str, _Params], ...] = (
    ("workflow_dags", "prune_expired_dags", lambda r: {}),
    ("workflow_checkpoint", "prune_checkpoints_beyond_newest", lambda r: {"keep": r.checkpoints_per_workflow}),
    ("workflow_execution", "prune_old_executions", lambda r: {"max_age": r.execution_age}),
    ("episodic_events", "prune_old_events", lambda r: {"max_age": r.event_age}),
    ("episodic_events", "prune_events_beyond_newest", lambda r: {"keep": r.event_rows}),
    ("metrics", "prune_old_metrics", lambda r: {"max_age": r.metric_age}),
    ("error_log", "prune_old_errors", lambda r: {"max_age": r.error_age}),
    ("http_session", "prune_expired_sessions", lambda r: {}),
    ("rate_limit_window", "prune_expired_windows", lambda r: {}),
    ("oauth_pending", "prune_expired_oauth_pending", lambda r: {}),
    ("oauth_code", "prune_expired_oauth_codes", lambda r: {}),
    ("oauth_token", "prune_expired_oauth_tokens", lambda r: {}),
)
"""(table, named query, its parameters besides ``batch``), in the order they run."""


class RetentionStore:
    """Applies the retention policies over the pool."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def prune(self, retention: Retention = DEFAULT_RETENTION) -> dict[str, int]:
        """Apply every policy of `retention`; the rows deleted per table (each table listed, 0 included)."""
        deleted: dict[str, int] = {}
        for table, name, params in _POLICIES:
            count = await self._drain(name, {**params(retention), "batch": retention.batch})
            deleted[table] = deleted.get(table, 0) + count
        return deleted

    async def _drain(self, name: str, params: dict[str, Any]) -> int:
        """Run the policy `name` batch after batch until one deletes fewer than a full batch."""
        total = 0
        while True:
            count = await self._delete_batch(name, params)
            total += count
            if count < params["batch"]:
                logger.debug("%s deleted %d rows", name, total)
                return total

    async def _delete_batch(self, name: str, params: dict[str, Any]) -> int:
        """One batch, in its own transaction (the connection is in autocommit mode)."""
        async with translated(f"pruning ({name})"), self._pool.connection(deadline_s=BULK_DEADLINE_S) as conn:
            cursor = await conn.execute(named_query(name), params)
            return max(cursor.rowcount, 0)
