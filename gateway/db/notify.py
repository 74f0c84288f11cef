"""`LearnedListener`: gateways sharing one database hear each other learn, through LISTEN/NOTIFY.

`LearningStore.record_run` sends ``pg_notify('pml_learned', <origin>)`` inside the transaction that records a
run, so the notice leaves on commit only. The listener owns one autocommit connection of its own for its whole
life (a pooled one would be handed back), and calls `on_change` for each notice of another origin. When the
connection drops it reconnects with capped exponential backoff and calls `on_change` once more: notices sent
while it was away are lost, so the caller catches up. Every wait is bounded: connecting and LISTEN by
`LISTEN_TIMEOUT_S`, the quiet between notices by a liveness probe every `PROBE_EVERY_S` (a peer that vanished
sends nothing), closing by `CLOSE_TIMEOUT_S`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.abc
import psycopg

from gateway.backoff import Backoff
from gateway.db.pool import connect, translated
from gateway.db.queries import query
from gateway.errors import DatabaseError

logger = logging.getLogger(__name__)

LISTEN_TIMEOUT_S = 10.0
"""Connecting and subscribing, together."""
PROBE_EVERY_S = 30.0
"""Without a notice for this long, the connection is probed."""
PROBE_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 2.0
BACKOFF = Backoff(base_s=0.5, cap_s=30.0)
"""Reconnection waits double from the first to the cap, and start again at the first after a success."""


class LearnedListener:
    """Calls `on_change` whenever a gateway of another `origin` has committed what it learned."""

    def __init__(self, *, url: str, origin: str, on_change: Callable[[], None]) -> None:
        self._url = url
        self._origin = origin
        self._on_change = on_change

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; reports started once the first attempt has subscribed, or failed."""
        failures, started = 0, False
        while True:
            try:
                async with self._listening() as conn:
                    if started:
                        self._on_change()  # what was sent while this gateway was not listening is lost
                    else:
                        task_status.started()
                    started, failures = True, 0
                    await self._receive(conn)
            except (DatabaseError, TimeoutError) as exc:
                failures += 1
                logger.warning("not hearing other gateways learn (%s); reconnecting in %.1f s", exc,
                               BACKOFF.delay(failures))
            if not started:
                task_status.started()
                started = True
            await anyio.sleep(BACKOFF.delay(max(failures, 1)))

    @asynccontextmanager
    async def _listening(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A fresh connection subscribed to ``pml_learned``, closed on exit (shielded, bounded)."""
        with anyio.fail_after(LISTEN_TIMEOUT_S):
            conn = await connect(self._url)
        try:
            with anyio.fail_after(LISTEN_TIMEOUT_S):
                async with translated("subscribing to pml_learned"):
                    await conn.execute(query("listen_learned"))
            yield conn
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT_S):
                await conn.close()

    async def _receive(self, conn: psycopg.AsyncConnection[Any]) -> None:
        """Pass notices on until the connection fails, probing it after each quiet `PROBE_EVERY_S`."""
        while True:
            async with translated("waiting for notices on pml_learned"):
                async for notice in conn.notifies(timeout=PROBE_EVERY_S):
                    if notice.payload != self._origin:
                        self._on_change()
                with anyio.fail_after(PROBE_TIMEOUT_S):
                    await conn.execute(query("listener_alive"))
