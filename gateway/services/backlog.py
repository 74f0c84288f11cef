"""Writes that met a database outage, kept in order and made once Postgres answers again.

What a finished workflow teaches (its run record, its edges, its intent, its capability) is written after the
client has its result. When Postgres is unreachable that write would be lost with the lesson; the pool says so at
once (`DatabaseUnavailableError`), and the write waits here instead. One task retries the oldest write every
`RETRY_S` while the database stays away, then makes the rest in the order they came. Past `MAX_WRITES` the oldest
are given up (and counted in the log): an outage of days must not grow the gateway's memory without bound.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc

from gateway.errors import DatabaseUnavailableError

logger = logging.getLogger(__name__)

MAX_WRITES = 10_000
RETRY_S = 1.0
"""Between tries of the oldest waiting write; a try while the pool knows of the outage fails at once (cheap)."""
FINAL_FLUSH_TIMEOUT_S = 5.0
"""At shutdown, how long the writes still waiting may take before they are given up."""

Write = Callable[[], Awaitable[object]]


class Backlog:
    """Database writes made now, or later, in order, when the database is unreachable now."""

    def __init__(self, *, max_writes: int = MAX_WRITES, retry_s: float = RETRY_S) -> None:
        self._writes: deque[tuple[str, Write]] = deque()
        self._max_writes = max_writes
        self._retry_s = retry_s
        self._wake = anyio.Event()
        self.given_up = 0
        """Writes dropped because `max_writes` were already waiting, or still waiting at shutdown."""

    def __len__(self) -> int:
        return len(self._writes)

    async def attempt(self, what: str, write: Write) -> None:
        """Make `write` now; if writes are waiting or the database is unreachable, keep it for `run` to make.

        Any other error is the caller's (the write was refused, not postponed).
        """
        if self._writes:
            self._keep(what, write)  # behind the ones waiting: a lesson must not overtake the one before it
            return
        try:
            await write()
        except DatabaseUnavailableError as exc:
            logger.warning("%s waits for the database: %s", what, exc)
            self._keep(what, write)

    def _keep(self, what: str, write: Write) -> None:
        if len(self._writes) >= self._max_writes:
            dropped, _ = self._writes.popleft()
            self.given_up += 1
            logger.error("%s given up: %d writes already wait for the database", dropped, self._max_writes)
        self._writes.append((what, write))
        self._wake.set()

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Make the waiting writes in order, retrying every `retry_s` while the database stays unreachable;
        until cancelled, then one last try bounded by `FINAL_FLUSH_TIMEOUT_S`."""
        task_status.started()
        try:
            while True:
                await self._wake.wait()
                await self._drain(retry=True)
                self._wake = anyio.Event()
        finally:
            with anyio.CancelScope(shield=True), anyio.move_on_after(FINAL_FLUSH_TIMEOUT_S):
                await self._drain(retry=False)
            if self._writes:
                self.given_up += len(self._writes)
                logger.error("%d writes still waiting for the database are lost at shutdown (the first: %s)",
                             len(self._writes), self._writes[0][0])
                self._writes.clear()

    async def _drain(self, *, retry: bool) -> None:
        made = 0
        while self._writes:
            what, write = self._writes[0]
            try:
                await write()
            except DatabaseUnavailableError:
                if not retry:
                    return
                await anyio.sleep(self._retry_s)
                continue
            except Exception:  # refused for good (a constraint, a bug): retrying would not help
                logger.exception("%s failed after waiting for the database; given up", what)
            else:
                made += 1
            self._writes.popleft()
        if made:
            logger.warning("the database answers again: %d waiting writes made", made)
