"""The gateway's periodic jobs: applying the retention policies while it runs."""

from __future__ import annotations

import logging
from typing import Protocol

import anyio
import anyio.abc

from gateway.errors import GatewayError

logger = logging.getLogger(__name__)

PRUNE_DELAY_S = 60.0
"""The first retention prune waits this long after the index opens (start-up work goes first)."""
PRUNE_INTERVAL_S = 6 * 3600.0
"""Then the retention policies are applied again this often."""


class Retention(Protocol):
    async def prune(self) -> dict[str, int]:
        """Delete what the policies no longer keep; rows deleted per table."""
        ...


class Pruner:
    """Applies the retention policies `delay_s` after it starts, then every `interval_s`; a failed round is logged
    and the next one comes all the same."""

    def __init__(self, retention: Retention, *, delay_s: float = PRUNE_DELAY_S,
                 interval_s: float = PRUNE_INTERVAL_S) -> None:
        self._retention = retention
        self._delay_s = delay_s
        self._interval_s = interval_s

    async def run(self, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        await anyio.sleep(self._delay_s)
        while True:
            try:
                deleted = await self._retention.prune()
                logger.info("pruned: %s", ", ".join(f"{table} {count}" for table, count in deleted.items()))
            except GatewayError:
                logger.exception("pruning the database failed")
            await anyio.sleep(self._interval_s)
