"""Retry delays: exponential backoff, capped, forgiven after a stable run. Pure.

Used for downstream restarts, reconnecting to hear other gateways, and opening the index again.
"""

from __future__ import annotations

from dataclasses import dataclass

STABLE_AFTER_S = 30.0
"""A connection that stayed up this long counts as healthy: its crash starts the backoff afresh."""

_MAX_EXPONENT = 32


@dataclass(frozen=True, slots=True, kw_only=True)
class Backoff:
    """``base_s * 2**(failures - 1)``, never above `cap_s`."""

    base_s: float = 0.5
    cap_s: float = 30.0
    stable_after_s: float = STABLE_AFTER_S

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.cap_s < self.base_s:
            raise ValueError(f"backoff needs 0 <= base_s <= cap_s, got {self.base_s} and {self.cap_s}")

    def delay(self, failures: int) -> float:
        """Seconds to wait before the next start, after `failures` consecutive failures (0: none)."""
        if failures <= 0:
            return 0.0
        return min(self.cap_s, self.base_s * float(2 ** min(failures - 1, _MAX_EXPONENT)))

    def after_crash(self, failures: int, up_for_s: float) -> int:
        """The failure count after a running server exited having been up `up_for_s` seconds."""
        return 1 if up_for_s >= self.stable_after_s else failures + 1
