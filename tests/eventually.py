"""One way for a test to wait for something that tells it nothing when it happens (a background retry, a process
exit, a row another task writes): ask again until it holds, and fail with what was awaited when it never does."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio

T = TypeVar("T")


async def eventually(condition: Callable[[], T | Awaitable[T]], *, timeout_s: float = 10.0,
                     interval_s: float = 0.01, what: str = "") -> T:
    """The first truthy value of `condition` (sync or async), asked every `interval_s`; AssertionError after
    `timeout_s` naming `what` (or the condition) and its last value."""
    last: T | None = None
    with anyio.move_on_after(timeout_s):
        while True:
            value = condition()
            last = await value if inspect.isawaitable(value) else value
            if last:
                return last
            await anyio.sleep(interval_s)
    raise AssertionError(f"still not so after {timeout_s} s: {what or getattr(condition, '__name__', condition)} "
                         f"(last: {last!r})")
