"""`open_database`: the gateway's one way in to Postgres, embedded or at a URL.

Without a URL it starts the embedded server on `pgdata` (in a worker thread: it blocks), then migrates and
opens the pool. On exit, even when cancelled (SIGTERM), it closes the pool and stops the embedded server,
shielded, each wait bounded by a named timeout.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio
from psycopg.rows import scalar_row

from gateway.db.capabilities import CapabilityStore
from gateway.db.embedded import KILL_TIMEOUT_S, STOP_TIMEOUT_S, EmbeddedPostgres
from gateway.db.learning import LearningStore
from gateway.db.memory import IntentMemory
from gateway.db.migrate import migrate
from gateway.db.oauth import OAuthStore
from gateway.db.pool import CLOSE_TIMEOUT_S, Pool, mask_password, open_pool, translated
from gateway.db.queries import query
from gateway.db.retention import RetentionStore
from gateway.db.secrets import SecretStore
from gateway.db.tools import ToolStore
from gateway.db.user_servers import UserServerStore
from gateway.db.users import UserStore
from gateway.db.workflows import WorkflowStore
from gateway.errors import DatabaseError, DataDirLockedError

logger = logging.getLogger(__name__)

POOL_CLOSE_TIMEOUT_S = CLOSE_TIMEOUT_S + 1.0
TAKE_OVER_CHECK_S = 1.0
EMBEDDED_STOP_TIMEOUT_S = STOP_TIMEOUT_S + 2 * KILL_TIMEOUT_S + 1.0
"""Outer bound on `EmbeddedPostgres.stop` (its own escalation: fast, immediate, kill)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Database:
    """An open database: the pool, the stores over it, and where the data lives."""

    pool: Pool
    url: str = field(repr=False)
    location: str
    embedded: bool
    tools: ToolStore
    oauth: OAuthStore
    workflows: WorkflowStore
    learning: LearningStore
    memory: IntentMemory
    capabilities: CapabilityStore
    retention: RetentionStore
    users: UserStore
    secrets: SecretStore
    user_servers: UserServerStore
    _server: EmbeddedPostgres | None = field(default=None, repr=False)

    async def size_bytes(self) -> int:
        """Disk used: the data directory when embedded, else the database's size."""
        if self._server is not None:
            return await anyio.to_thread.run_sync(self._server.size_bytes)
        async with translated("measuring the database size"), self.pool.connection() as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            size = await (await cursor.execute(query("database_size"))).fetchone()
        return int(size or 0)


@asynccontextmanager
async def open_database(
    *, url: str | None, pgdata: Path, share_running: bool = False
) -> AsyncIterator[Database]:
    """Postgres at `url`, or the embedded one on `pgdata` when `url` is None; migrated, pooled.

    Another gateway's embedded server is refused (`DataDirLockedError`) unless `share_running`: then it is used
    as it is, left running, and taken over if that gateway stops it first.
    """
    if url is not None:
        async with _pooled(url, location=mask_password(url), server=None) as database:
            yield database
        return
    server = EmbeddedPostgres(pgdata)
    async with (
        _started(server, share_running=share_running) as embedded_url,
        _pooled(embedded_url, location=server.location, server=server) as database,
    ):
        yield database


@asynccontextmanager
async def _started(server: EmbeddedPostgres, *, share_running: bool) -> AsyncIterator[str]:
    try:
        try:
            url = await anyio.to_thread.run_sync(server.start)
        except DataDirLockedError:
            if not share_running:
                raise
            url = await anyio.to_thread.run_sync(server.share)
            logger.info("using the Postgres another gateway runs on %s", server.location)
            async with anyio.create_task_group() as tg:
                tg.start_soon(_take_over_when_left, server)
                yield url
                tg.cancel_scope.cancel()
            return
        yield url
    finally:  # also after a cancelled start: the worker thread finished it, so stop it
        with anyio.CancelScope(shield=True), anyio.fail_after(EMBEDDED_STOP_TIMEOUT_S):
            await anyio.to_thread.run_sync(server.stop, abandon_on_cancel=True)  # a no-op when shared


async def _take_over_when_left(server: EmbeddedPostgres) -> None:
    """Check every `TAKE_OVER_CHECK_S` whether the gateway whose Postgres this one shares has stopped it, and then
    run it here: without this, the data directory would wait, unowned, for this gateway's next database call."""
    while True:
        await anyio.sleep(TAKE_OVER_CHECK_S)
        try:
            await anyio.to_thread.run_sync(server.revive)
        except DatabaseError as exc:  # its last backends still exiting, say: the next check tries again
            logger.error("starting the embedded Postgres again failed: %s", exc)


@asynccontextmanager
async def _pooled(url: str, *, location: str, server: EmbeddedPostgres | None) -> AsyncIterator[Database]:
    applied = await migrate(url)
    if applied:
        logger.info("database %s migrated: %s", location, ", ".join(applied))
    pool = await open_pool(url)
    if server is not None:
        embedded = server

        async def revive() -> bool:
            return await anyio.to_thread.run_sync(embedded.revive)

        pool.revive = revive
    try:
        yield Database(
            pool=pool,
            url=url,
            location=location,
            embedded=server is not None,
            tools=ToolStore(pool),
            oauth=OAuthStore(pool),
            workflows=WorkflowStore(pool),
            learning=LearningStore(pool),
            memory=IntentMemory(pool),
            capabilities=CapabilityStore(pool),
            retention=RetentionStore(pool),
            users=UserStore(pool), secrets=SecretStore(pool), user_servers=UserServerStore(pool),
            _server=server,
        )
    finally:
        with anyio.CancelScope(shield=True), anyio.fail_after(POOL_CLOSE_TIMEOUT_S):
            await pool.close(timeout=CLOSE_TIMEOUT_S)
