"""`execute_dag {intent}` without tasks: suggest a workflow, and learn from what then happens to it.

The nearest past intents propose the workflow that served them (`suggest.recalled`), weighed with the tool
prior learned from all of them (`tool_prior`); without one near enough the DAG is built from the ranking and
the learned graph (`suggest.suggest`). A suggestion is remembered by its intent for a while: when a workflow
with that intent finishes, its outcome feeds the adaptive threshold.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from gateway.dag.state import RunStatus, WorkflowState
from gateway.errors import DatabaseUnavailableError, GatewayError
from gateway.lru import LRU
from gateway.services import thresholds as th
from gateway.services.search import Recall, SearchService
from gateway.services.suggest import CONSENSUS_K, Suggestion, recalled, suggest
from gateway.services.tool_prior import ToolPrior

logger = logging.getLogger(__name__)

CONTEXT = "default"
_PENDING = 256


class ThresholdPort(Protocol):
    async def load_thresholds(self, context: str) -> th.Thresholds: ...

    async def update_thresholds(
        self, context: str, change: Callable[[th.Thresholds], th.Thresholds]
    ) -> th.Thresholds:
        """Apply `change` to the stored thresholds atomically (another gateway may record at the same time)."""
        ...


class Planner:
    """Suggests DAGs for intents and keeps the suggestion threshold adapted to how suggestions fare."""

    def __init__(self, *, search: SearchService, memory: Recall | None = None,
                 store: ThresholdPort | None = None, use_graph: bool = True,
                 prior: Callable[[], ToolPrior | None] = lambda: None) -> None:
        self._search = search
        self._memory = memory
        self._prior = prior
        self._store = store
        self._use_graph = use_graph
        self._pending: LRU[str, bool] = LRU(_PENDING)
        self.thresholds = th.Thresholds()

    async def load(self) -> None:
        if self._store is not None:
            self.thresholds = await self._store.load_thresholds(CONTEXT)

    async def suggest(self, intent: str, *, user: str | None = None) -> Suggestion:
        """The suggested DAG for `intent` (check `.confident` and the threshold before running it), learnt from
        the workflows `user` may see: their own and the public ones (None, stdio's one user: all of them)."""
        result = await self._search.search(intent, limit=10, user=user)
        found = None
        if self._memory is not None and self._use_graph:
            vector = await self._search.embed_query(intent)
            memories = await self._memory.recall(vector, model_id=self._search.model_id, limit=CONSENSUS_K,
                                                 user=user)
            prior = self._prior()
            found = recalled(memories, result.ranked, intent=intent,
                             prior=prior.probabilities(vector) if prior is not None else None)
        suggestion = found or suggest(result.ranked, self._search.current_graph(), use_graph=self._use_graph)
        self._remember(intent, suggestion)
        return suggestion

    def above_threshold(self, suggestion: Suggestion) -> bool:
        return suggestion.confident and suggestion.confidence >= self.thresholds.suggestion

    async def observe(self, state: WorkflowState) -> None:
        """A workflow finished: if it answered a suggested intent, count the outcome."""
        intent = " ".join((state.dag.intent or "").split())
        above = self._pending.pop(intent, None)
        if above is None:
            return
        result = th.outcome(above, state.status is RunStatus.COMPLETED)
        self.thresholds = th.record(self.thresholds, result)
        if self._store is not None:
            try:
                self.thresholds = await self._store.update_thresholds(CONTEXT, lambda stored: th.record(stored, result))
            except GatewayError as exc:
                logger.warning("could not save the adaptive thresholds: %s", exc,
                               exc_info=not isinstance(exc, DatabaseUnavailableError))

    def _remember(self, intent: str, suggestion: Suggestion) -> None:
        self._pending[" ".join(intent.split())] = self.above_threshold(suggestion)
