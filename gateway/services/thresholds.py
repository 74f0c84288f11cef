"""Adaptive thresholds, pure: a window of suggestion outcomes nudges the threshold up or down.

behaviour.md section 4: per context, a window of the last 50 outcomes, adjusted every 10 once 20 exist; a
false-positive rate above 0.2 raises the threshold by 0.05 x rate, else a false-negative rate above 0.3
lowers it by 0.05 x rate. The suggestion threshold starts at 0.70 within [0.40, 0.90].

Outcomes: ``tp`` a suggestion above the threshold was run and succeeded; ``fp`` it was run and failed;
``fn`` a suggestion below the threshold was run anyway and succeeded; ``tn`` below and failed.
"""

from __future__ import annotations

from dataclasses import replace

from gateway.models import SUGGESTION_DEFAULT, Thresholds

__all__ = ["SUGGESTION_DEFAULT", "Thresholds", "outcome", "record"]

WINDOW = 50
ADJUST_EVERY = 10
MIN_SAMPLES = 20
SUGGESTION_BOUNDS = (0.40, 0.90)
OUTCOMES = ("tp", "fp", "fn", "tn")


def outcome(above_threshold: bool, succeeded: bool) -> str:
    if above_threshold:
        return "tp" if succeeded else "fp"
    return "fn" if succeeded else "tn"


def record(thresholds: Thresholds, result: str) -> Thresholds:
    """Add one outcome to the window and adjust the threshold when it is time to."""
    if result not in OUTCOMES:
        raise ValueError(f"unknown outcome {result!r}")
    window = (*thresholds.outcomes, result)[-WINDOW:]
    samples = thresholds.samples + 1
    value = thresholds.suggestion
    if samples % ADJUST_EVERY == 0 and len(window) >= MIN_SAMPLES:
        value = _adjusted(value, window)
    return replace(thresholds, suggestion=value, samples=samples, outcomes=window)


def _adjusted(value: float, window: tuple[str, ...]) -> float:
    fp_rate = window.count("fp") / len(window)
    fn_rate = window.count("fn") / len(window)
    if fp_rate > 0.2:
        value += 0.05 * fp_rate
    elif fn_rate > 0.3:
        value -= 0.05 * fn_rate
    low, high = SUGGESTION_BOUNDS
    return round(min(high, max(low, value)), 4)
