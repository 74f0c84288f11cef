"""Restart delays double from the base up to the cap, and a stable run forgives past crashes."""

from __future__ import annotations

import pytest

from gateway.backoff import Backoff


def test_delays_double_from_the_base_and_stop_at_the_cap() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0)
    assert [backoff.delay(n) for n in range(1, 9)] == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]


def test_no_failure_means_no_delay_and_huge_counts_stay_capped() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0)
    assert backoff.delay(0) == 0.0
    assert backoff.delay(10_000) == 30.0


def test_a_crash_after_a_stable_run_starts_the_backoff_afresh() -> None:
    backoff = Backoff(base_s=0.5, cap_s=30.0, stable_after_s=30.0)
    assert backoff.after_crash(6, up_for_s=31.0) == 1
    assert backoff.after_crash(6, up_for_s=2.0) == 7


def test_a_cap_below_the_base_is_refused() -> None:
    with pytest.raises(ValueError, match="base_s <= cap_s"):
        Backoff(base_s=5.0, cap_s=1.0)
