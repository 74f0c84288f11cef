"""Background work still running, by name, and a bounded wait for it to end.

What a finished workflow teaches is learned in the background, after the client has its answer. Two readers
need to know when that is done: a shutdown (stdin closed, SIGTERM) must not cancel a lesson half-written, and a
`cap_list` right after a run must count that run. Work is counted from the moment it is handed to the task group,
not from when its task first runs, so a wait can never miss work that was started but not yet scheduled.
"""

from __future__ import annotations

import itertools
from collections.abc import Awaitable, Callable

import anyio
import anyio.abc


class InFlight:
    """Names of the background jobs started and not yet ended."""

    def __init__(self) -> None:
        self._running: dict[int, str] = {}
        self._ids = itertools.count()
        self._idle = anyio.Event()
        self._idle.set()

    def start(self, tg: anyio.abc.TaskGroup, name: str, job: Callable[[], Awaitable[None]]) -> None:
        """Run `job` in `tg`, counted as running under `name` until it ends (however it ends)."""
        key = next(self._ids)
        if not self._running:
            self._idle = anyio.Event()
        self._running[key] = name

        async def run() -> None:
            try:
                await job()
            finally:
                self._end(key)

        tg.start_soon(run)

    async def wait(self, timeout_s: float) -> list[str]:
        """Wait at most `timeout_s` for every job to end; the names of those still running."""
        with anyio.move_on_after(timeout_s):
            await self._idle.wait()
        return list(self._running.values())

    def _end(self, key: int) -> None:
        self._running.pop(key, None)
        if not self._running:
            self._idle.set()
