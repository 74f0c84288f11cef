"""`search_tools`: rank the indexed tools for a plain-language query.

The query is embedded off the event loop (a small LRU keeps repeated queries free), then the index answers
with the nearest tools by cosine similarity. Servers that are not running are reported beside the hits, so
a client knows why a tool it expects may not answer yet.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import anyio
import anyio.to_thread
import numpy as np
from numpy.typing import NDArray

from gateway.errors import InvalidRequestError
from gateway.models import SearchHit, ServerState, ServerStatus
from gateway.ports import Embedder, ToolIndex

MAX_LIMIT = 50
MAX_QUERY_CHARS = 2000
_QUERY_CACHE_SIZE = 256


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """Ranked hits plus the servers that are not running right now."""

    query: str
    hits: list[SearchHit]
    unavailable: list[ServerStatus]


class SearchService:
    """Semantic search over the tool index."""

    def __init__(
        self,
        *,
        index: ToolIndex,
        embedder: Embedder,
        limiter: anyio.CapacityLimiter,
        statuses: Callable[[], Sequence[ServerStatus]] = list,
    ) -> None:
        self._index = index
        self._embedder = embedder
        self._limiter = limiter
        self._statuses = statuses
        self._cache: OrderedDict[str, NDArray[np.float32]] = OrderedDict()

    async def search(self, query: str, *, limit: int = 5, server: str | None = None) -> SearchResult:
        """The `limit` best tools for `query`, optionally on one server."""
        text = _checked_query(query)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", field="limit")
        vector = await self._embed_query(text)
        hits = await self._index.search(vector, model_id=self._embedder.model_id, limit=limit, server=server)
        down = [s for s in self._statuses() if s.state not in (ServerState.RUNNING, ServerState.DISABLED)]
        return SearchResult(query=text, hits=hits, unavailable=down)

    async def _embed_query(self, text: str) -> NDArray[np.float32]:
        cached = self._cache.get(text)
        if cached is not None:
            self._cache.move_to_end(text)
            return cached
        rows = await anyio.to_thread.run_sync(self._embedder.embed, [text], limiter=self._limiter)
        vector: NDArray[np.float32] = rows[0]
        self._cache[text] = vector
        if len(self._cache) > _QUERY_CACHE_SIZE:
            self._cache.popitem(last=False)
        return vector


def _checked_query(query: str) -> str:
    text = " ".join(query.split())
    if not text:
        raise InvalidRequestError("query must be a non-empty string describing what you want to do", field="query")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidRequestError(f"query must be at most {MAX_QUERY_CHARS} characters", field="query")
    return text
