"""The episodic memory of intents (`workflow_intent`): remember what served an intent, recall the nearest."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg.rows import kwargs_row
from psycopg.types.json import Jsonb

from gateway.db.pool import Pool, translated
from gateway.db.queries import query as named_query
from gateway.db.tools import Vector
from gateway.models import LOCAL_USER, StoredPrior


@dataclass(frozen=True, slots=True, kw_only=True)
class Recalled:
    """A past intent near the query, with the workflow that served it."""

    intent: str
    tools: tuple[str, ...]
    edges: tuple[tuple[str, str], ...]
    similarity: float


class IntentMemory:
    """Past intents with their embedding and the tools and edges of the workflow that answered them."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def remember(
        self, *, intent: str, embedding: Vector, model_id: str, tools: Sequence[str],
        edges: Sequence[tuple[str, str]], success: bool, owner: str = LOCAL_USER,
    ) -> None:
        """Keep an intent with the workflow that served it, run by `owner` (an HTTP user's id, or stdio's)."""
        params = {"intent": intent, "embedding": np.asarray(embedding, dtype=np.float32), "model": model_id,
                  "tools": list(tools), "edges": Jsonb([list(e) for e in edges]), "success": success,
                  "created_by": owner}
        async with translated("remembering an intent"), self._pool.connection() as conn:
            await conn.execute(named_query("remember_intent"), params)

    async def recall(self, query: Vector, *, model_id: str, limit: int, user: str | None = None) -> list[Recalled]:
        """The `limit` nearest past intents `user` may learn from: their own and the public ones (every one for
        None, stdio's one user). Another user's private workflow is never proposed, nor lifts a search."""
        params = {"query": np.asarray(query, dtype=np.float32), "model": model_id, "limit": limit, "user": user}
        async with translated("recalling past intents"), self._pool.connection() as conn:
            cursor = conn.cursor(row_factory=kwargs_row(_recalled))
            await cursor.execute(named_query("recall_intents"), params, prepare=True)
            return await cursor.fetchall()

    async def count(self, *, model_id: str) -> int:
        """How many successful past intents of this embedding model are remembered."""
        async with translated("counting past intents"), self._pool.connection() as conn:
            row = await (await conn.execute(named_query("count_intents"), {"model": model_id})).fetchone()
            return int(row[0]) if row else 0

    async def training_rows(self, *, model_id: str, limit: int) -> tuple[np.ndarray, list[list[str]]]:
        """The `limit` most recent successful past intents: their embeddings (one row each) and their tools."""
        async with translated("reading past intents"), self._pool.connection() as conn:
            rows = await (await conn.execute(named_query("training_intents"),
                                             {"model": model_id, "limit": limit})).fetchall()
        if not rows:
            return np.zeros((0, 0), dtype=np.float32), []
        return (np.vstack([np.asarray(embedding.to_numpy(), dtype=np.float32) for embedding, _ in rows]),
                [list(tools) for _, tools in rows])

    async def stored_prior(self, *, model_id: str) -> StoredPrior | None:
        """The tool prior last stored for this embedding model; None if there is none or its weights do not
        have the shape its tools and dimensions say (then it is refitted)."""
        async with translated("reading the tool prior"), self._pool.connection() as conn:
            row = await (await conn.execute(named_query("stored_prior"), {"model": model_id})).fetchone()
        if row is None:
            return None
        tools, dimensions, weights, samples, intents = row
        if len(weights) != (dimensions + 1) * len(tools) * 8:
            return None
        matrix = np.frombuffer(weights, dtype="<f8").reshape(dimensions + 1, len(tools)).copy()
        return StoredPrior(tools=tuple(tools), weights=matrix, samples=samples, intents=intents)

    async def store_prior(self, prior: StoredPrior, *, model_id: str) -> None:
        """Keep a fitted tool prior for this embedding model, replacing the one before."""
        weights = np.ascontiguousarray(prior.weights, dtype="<f8")
        params = {"model": model_id, "tools": list(prior.tools), "dimensions": weights.shape[0] - 1,
                  "weights": weights.tobytes(), "samples": prior.samples, "intents": prior.intents}
        async with translated("storing the tool prior"), self._pool.connection() as conn:
            await conn.execute(named_query("store_prior"), params)


def _recalled(*, intent: str, tools: list[str], edges: Any, similarity: float) -> Recalled:
    return Recalled(intent=intent, tools=tuple(tools), similarity=float(similarity),
                    edges=tuple((str(a), str(b)) for a, b in edges))
