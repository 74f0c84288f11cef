"""The planner's adaptive thresholds kept in ``adaptive_thresholds``, one row per context."""

from __future__ import annotations

from collections.abc import Callable

from gateway.db.learning import LearningStore, ThresholdRow
from gateway.models import Thresholds


class StoredThresholds:
    """Load and update a context's thresholds (the planner's `ThresholdStore`)."""

    def __init__(self, store: LearningStore) -> None:
        self._store = store

    async def load_thresholds(self, context: str) -> Thresholds:
        return _thresholds(await self._store.threshold(context))

    async def update_thresholds(self, context: str, change: Callable[[Thresholds], Thresholds]) -> Thresholds:
        """`change` applied to the freshest stored thresholds, under the context's lock, and saved."""

        def changed(row: ThresholdRow | None) -> ThresholdRow:
            return _row(context, change(_thresholds(row)))

        return _thresholds(await self._store.update_threshold(context, changed))


def _thresholds(row: ThresholdRow | None) -> Thresholds:
    if row is None:
        return Thresholds()
    return Thresholds(suggestion=row.suggestion_threshold, samples=row.sample_count,
                      outcomes=tuple(str(o) for o in row.outcomes))


def _row(context: str, thresholds: Thresholds) -> ThresholdRow:
    rate = sum(1 for o in thresholds.outcomes if o in ("tp", "fn")) / max(len(thresholds.outcomes), 1)
    return ThresholdRow(context_hash=context, context_keys={"context": context},
                        suggestion_threshold=thresholds.suggestion, success_rate=rate,
                        sample_count=thresholds.samples, outcomes=list(thresholds.outcomes))
