"""Stopping: SIGTERM and SIGINT, a graceful stop of `serve`, and the log noise a shutdown makes.

Kept apart from `app` so that commands that never serve (``status`` above all) need not import the runtime to
handle a signal.
"""

from __future__ import annotations

import logging
import signal

import anyio

logger = logging.getLogger(__name__)


class Shutdown:
    """A stop asked for by SIGTERM or SIGINT. `serve` stops reading requests at once, lets what already finished
    be learned (bounded by `app.SIGNAL_GRACE_S`), then stops its servers and Postgres; a second signal cancels all."""

    def __init__(self) -> None:
        self.requested = anyio.Event()
        self.signal: int | None = None


class ShutdownNoise(logging.Filter):
    """Once the gateway is stopping, psycopg's notes that a query it cancelled closed its connection are what a
    shutdown does (the pool closes next): they stay out of the log unless it shows DEBUG (a stop during
    a first indexing printed several, which read like faults)."""

    EXPECTED = ("query cancellation interrupted", "discarding closed connection")
    LOGGERS = ("psycopg", "psycopg.pool")  # a logger's filters see only its own records, not its children's

    def __init__(self) -> None:
        super().__init__()
        self.stopping = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.stopping and record.getMessage().startswith(self.EXPECTED):
            return logging.getLogger().isEnabledFor(logging.DEBUG)
        return True

    def install(self) -> None:
        for name in self.LOGGERS:
            logging.getLogger(name).addFilter(self)


NOISE = ShutdownNoise()


async def cancel_on_signal(scope: anyio.CancelScope, shutdown: Shutdown, graceful: bool = False) -> None:
    """Cancel `scope` at the first SIGTERM or SIGINT (noted in `shutdown`); when `graceful` (under `serve`), the
    first signal asks for a graceful stop through `shutdown` instead, and a second one cancels."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            logger.info("received %s; shutting down", signal.Signals(signum).name)
            NOISE.stopping = True
            first = shutdown.signal is None
            shutdown.signal = shutdown.signal or signum
            if graceful and first:
                shutdown.requested.set()
                continue
            scope.cancel()
            return
