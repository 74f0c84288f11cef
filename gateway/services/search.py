"""`search_tools`: rank the indexed tools for a plain-language query.

Meaning (the query's embedding against pgvector's HNSW index) and words (BM25 in memory) each bring a pool of
candidates; `ranking.rank` weighs them, multiplies by each tool's reliability, and lets the learned graph lift
the companions of the strongest hits (fetching those the text did not find). Servers that are not running
are reported beside the hits. While Postgres is unreachable the search still answers, by words and the graph
over the tools the servers listed, and says so (`SearchResult.degraded`).
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

import anyio
import anyio.to_thread
import numpy as np
from numpy.typing import NDArray

from gateway.errors import DatabaseUnavailableError, InvalidRequestError
from gateway.graph import ToolGraph, candidate_multiplier
from gateway.lru import LRU
from gateway.models import SearchHit, ServerState, ServerStatus, ToolDef
from gateway.ports import Embedder, ToolIndex, Vector
from gateway.services.capabilities import CapabilityMatch
from gateway.services.lexical import Bm25Index, name_coverage, words
from gateway.services.ranking import (
    Candidate,
    Ranked,
    RankWeights,
    companions,
    lift_servers,
    rank,
    server_strength,
)
from gateway.services.suggest import RECALL_K, Recollection, tool_votes
from gateway.services.vectors import MAX_TOOLS, ToolVectors


class Recall(Protocol):
    async def recall(self, query: Vector, *, model_id: str, limit: int,
                     user: str | None = None) -> Sequence[Recollection]:
        """The nearest past intents `user` may learn from: their own and the public ones (all for None)."""
        ...

MAX_LIMIT = 50
MAX_SIBLINGS = 100
"""A lifted server's tools that did not come up are fetched only when it has at most this many (its others are
lifted where they came up)."""
MAX_QUERY_CHARS = 20_000
"""Agents paste whole task statements (MiniLM reads the first 256 tokens; the words are matched in full)."""
MIN_POOL = 30
RELATED = 3
_QUERY_CACHE_SIZE = 256
DEFAULT_WEIGHTS = RankWeights()
NO_INDEX = "the tool index has not been opened: the database cannot be reached yet"
VECTORS_RETRY_S = 2.0
"""While some known tools have no vector in the in-memory copy (being embedded, here or by another gateway on the
same database), the copy is read again at most this often."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchResult:
    """Ranked hits plus the servers that are not running right now."""

    query: str
    hits: list[SearchHit]
    unavailable: list[ServerStatus]
    ranked: list[Ranked] = dataclasses.field(default_factory=list)
    capabilities: list[CapabilityMatch] = dataclasses.field(default_factory=list)
    """Learned capabilities matching the query, best first."""
    degraded: str | None = None
    """What the answer lacks because the database could not serve it, and why (a warning for the client)."""
    incomplete: str | None = None
    """What the answer lacks because servers are still starting or their tools not yet indexed (a warning)."""


class SearchService:
    """Hybrid search over the tool index, with the learned graph when one is given; with no `index` (the database
    has not been reached yet), by wording alone over the tools `set_tools` gives it."""

    def __init__(
        self,
        *,
        index: ToolIndex | None,
        embedder: Embedder,
        limiter: anyio.CapacityLimiter,
        statuses: Callable[[], Sequence[ServerStatus]] = list,
        graph: Callable[[], ToolGraph] = ToolGraph.empty,
        reliability: Callable[[str], float] = lambda tool: 1.0,
        weights: RankWeights = DEFAULT_WEIGHTS,
        memory: Recall | None = None,
        servers: frozenset[str] | None = None,
        unindexed: Callable[[], Sequence[str]] = list,
        memory_limit: int = MAX_TOOLS,
    ) -> None:
        """`unindexed` names the servers whose latest listing the index does not hold yet: their tools are found by
        their words alone until it does, and the answer says so. Catalogs of at most `memory_limit` tools are
        ranked from an in-memory copy of their embeddings (`vectors`), larger ones by pgvector."""
        self._index = index
        self.memory_limit = memory_limit
        self._unindexed = unindexed
        self._embedder = embedder
        self._limiter = limiter
        self._statuses = statuses
        self._graph = graph
        self._reliability = reliability
        self.weights = weights
        self._memory = memory
        self._servers = servers
        self._lexical = Bm25Index([])
        self._names: dict[str, frozenset[str]] = {}
        self._tools: dict[str, ToolDef] = {}
        self._server_sizes: collections.Counter[str] = collections.Counter()
        self._documents: dict[str, str] | None = None
        self._generation = 0
        self._cache: LRU[str, NDArray[np.float32]] = LRU(_QUERY_CACHE_SIZE)
        self._vectors: ToolVectors | None = None
        self._vectors_stale = True
        self._vectors_read_at = float("-inf")
        self._vectors_lock = anyio.Lock()

    def vectors_changed(self) -> None:
        """Tools were embedded: the in-memory copy of the embeddings is read again before the next search."""
        self._vectors_stale = True

    def current_graph(self) -> ToolGraph:
        """The learned graph the ranking uses now (empty with the graph turned off)."""
        return self._graph() if self.weights.graph else ToolGraph.empty()

    async def set_tools(self, tools: Iterable[ToolDef]) -> None:
        """Rebuild the word index over `tools` (off the event loop).

        The same texts as the last call rebuild nothing: at a restart every server lists what the index already
        holds, and a rebuild per server would load the start's busy cores for nothing. Of builds that overlap,
        only the one asked for last is kept, whichever thread ends last.
        """
        tools = list(tools)
        self._tools = {t.tool_id: t for t in tools}
        self._server_sizes = collections.Counter(t.server for t in tools)
        documents = {t.tool_id: t.embed_text for t in tools}
        if documents == self._documents:
            return
        self._documents = documents
        self._generation += 1
        generation = self._generation
        try:
            built = await anyio.to_thread.run_sync(Bm25Index, list(documents.items()), limiter=self._limiter)
        except BaseException:
            if generation == self._generation:
                self._documents = None  # not built: the next call builds it
            raise
        if generation == self._generation:
            self._lexical = built
            self._names = {t.tool_id: frozenset(words(t.name)) for t in tools}

    async def search(
        self, query: str, *, limit: int = 5, server: str | None = None,
        context: Sequence[str] = (), include_related: bool = False, user: str | None = None,
    ) -> SearchResult:
        """The `limit` best tools for `query`, optionally on one server, near `context` tools; the past intents
        that lift tools are those `user` may learn from (their own and the public ones; None: all)."""
        text = _checked_query(query)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidRequestError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}", field="limit")
        graph = self.current_graph()
        vector = await self._embed_query(text)
        pool = max(MIN_POOL, int(limit * 3 * candidate_multiplier(graph.density)))
        found = dict(self._words(text, pool, server))
        said = frozenset(words(text))
        degraded = None
        try:
            if self._index is None:
                raise DatabaseUnavailableError(NO_INDEX)
            votes = await self._recall(vector, server, user)
            rows = await self._pool(vector, pool, list(found) + list(votes), server)
        except DatabaseUnavailableError as exc:  # rank by words over the listed tools until Postgres is back
            votes, rows = {}, self._listed(found, server)
            degraded = f"ranked by wording and the learned graph only, without meaning, memory or capabilities: {exc}"
        waiting = [] if degraded else self._unindexed()
        if waiting:  # listed, not indexed yet: found by their words alone
            held = {r.tool_id for r in rows}
            rows += self._listed([t for t in found if t not in held and t.split(":", 1)[0] in waiting], server)
        ranked = self._rank(rows, found, said, graph, context, votes)
        extra = [t for t in companions(graph, [r.tool_id for r in ranked[:self.weights.companion_seeds]], limit)
                 if t not in {r.tool_id for r in rows}]
        if extra:
            try:
                rows += (self._listed(extra, server) if degraded or self._index is None else
                         await self._pool(vector, 0, extra, server))
            except DatabaseUnavailableError as exc:  # gone since the first pool was fetched
                rows += self._listed(extra, server)
                degraded = f"the learned companions of the best hits are ranked without meaning: {exc}"
            ranked = self._rank(rows, found, said, graph, context, votes)
        if self.weights.server_lift and server is None and ranked and self._several_servers:
            ranked, rows = await self._lift_servers(ranked, rows, vector, _Words(found, said), graph, context, votes,
                                                    degraded is not None)
        hits = _hits(ranked[:limit], {r.tool_id: r for r in rows}, graph if include_related else None)
        statuses = self._statuses()
        down = [s for s in statuses if s.state not in (ServerState.RUNNING, ServerState.DISABLED)]
        starting = [s.name for s in down if s.state is ServerState.STARTING and s.reason is None]
        return SearchResult(query=text, hits=hits, unavailable=down, ranked=ranked, degraded=degraded,
                            incomplete=_incomplete(starting, waiting))

    @property
    def _several_servers(self) -> bool:
        """Whether the known tools come from more than one server (else lifting a server changes no order)."""
        return len(self._server_sizes) > 1

    async def _lift_servers(
        self, ranked: list[Ranked], rows: list[SearchHit], vector: NDArray[np.float32], said: _Words,
        graph: ToolGraph, context: Sequence[str], votes: dict[str, float], degraded: bool,
    ) -> tuple[list[Ranked], list[SearchHit]]:
        """`ranked` with every tool of the best hits' servers lifted by `RankWeights.server_lift` times the score of
        its server's best hit among them; those servers' other tools are fetched and ranked first."""
        strength = server_strength(ranked, self.weights.server_seeds)
        held = {r.tool_id for r in rows}
        small = {s for s in strength if self._server_sizes.get(s, 0) <= MAX_SIBLINGS}
        siblings = [t for t in self._tools if _server_of(t) in small and t not in held]
        if siblings:
            try:
                rows = rows + (self._listed(siblings, None) if degraded or self._index is None else
                               await self._pool(vector, 0, siblings, None))
            except DatabaseUnavailableError:
                rows = rows + self._listed(siblings, None)
            ranked = self._rank(rows, said.found, said.words, graph, context, votes)
        return lift_servers(ranked, strength, self.weights.server_lift), rows

    async def _pool(self, vector: NDArray[np.float32], size: int, extra: Sequence[str],
                    server: str | None) -> list[SearchHit]:
        """The `size` nearest tools plus the `extra` ones with their cosine similarity: from the in-memory copy of
        the embeddings when there is one, else from pgvector (a catalog too large to hold)."""
        assert self._index is not None
        vectors = await self._current_vectors()
        if vectors is None:
            return await self._index.search_pool(vector, model_id=self._embedder.model_id, pool=size, extra=extra,
                                                 server=server)
        found = vectors.pool(vector, size=size, extra=extra, server=server)
        tools = ((self._tools.get(t), s) for t, s in found.items())
        return [SearchHit(tool_id=t.tool_id, server=t.server, name=t.name, description=t.description,
                          input_schema=t.input_schema, score=s, semantic=s, annotations=t.annotations, title=t.title)
                for t, s in tools if t is not None and (server is None or t.server == server)]

    async def _current_vectors(self) -> ToolVectors | None:
        """The in-memory copy, read first if tools were embedded since (or some known tools had no vector yet and
        the last read is `VECTORS_RETRY_S` old); None for a catalog of more than `MAX_TOOLS`."""
        assert self._index is not None
        if len(self._tools) > self.memory_limit:
            return None
        held = self._vectors
        if not self._vectors_stale and not (
            held is not None and len(held) < len(self._tools)
            and anyio.current_time() - self._vectors_read_at >= VECTORS_RETRY_S
        ):
            return held
        async with self._vectors_lock:
            if self._vectors_stale or self._vectors is held:
                self._vectors_stale = False
                self._vectors_read_at = anyio.current_time()
                try:
                    ids, matrix = await self._index.embeddings(self._embedder.model_id)
                except BaseException:
                    self._vectors_stale = True
                    raise
                self._vectors = (ToolVectors(ids, matrix, self._embedder.model_id) if len(ids) <= self.memory_limit
                                 else None)
            return self._vectors

    def _listed(self, tool_ids: Iterable[str], server: str | None) -> list[SearchHit]:
        """Hits (no meaning score) for the known tools among `tool_ids`, from the tools `set_tools` was given."""
        tools = (self._tools[t] for t in tool_ids if t in self._tools)
        return [SearchHit(tool_id=t.tool_id, server=t.server, name=t.name, description=t.description,
                          input_schema=t.input_schema, score=0.0, semantic=0.0, annotations=t.annotations,
                          title=t.title)
                for t in tools if server is None or t.server == server]

    def _words(self, text: str, pool: int, server: str | None) -> list[tuple[str, float]]:
        found = self._lexical.search(text, pool if server is None else pool * 4, phrases=self.weights.phrases)
        return found if server is None else [h for h in found if h[0].startswith(f"{server}:")][:pool]

    async def _recall(self, vector: NDArray[np.float32], server: str | None, user: str | None) -> dict[str, float]:
        """Tools that served the nearest past intents `user` may learn from, with their share of the votes."""
        if self._memory is None or not self.weights.graph:
            return {}
        memories = await self._memory.recall(vector, model_id=self._embedder.model_id, limit=RECALL_K, user=user)
        votes = tool_votes(memories)
        return votes if server is None else {t: v for t, v in votes.items() if t.startswith(f"{server}:")}

    def _rank(self, rows: Sequence[SearchHit], found: dict[str, float], said: frozenset[str], graph: ToolGraph,
              context: Sequence[str], votes: dict[str, float]) -> list[Ranked]:
        """Rank the pool; with `servers` set, only the tools of those servers (others stay stored, unseen).

        `found` holds the BM25 scores, `said` the query's words (to see which tool names it spells out).
        """
        candidates = [Candidate(tool_id=r.tool_id, semantic=r.semantic, lexical=found.get(r.tool_id, 0.0),
                                named=name_coverage(said, self._names.get(r.tool_id, frozenset())))
                      for r in rows if self._servers is None or r.server in self._servers]
        return rank(candidates, graph=graph, reliability=self._reliability, weights=self.weights, context=context,
                    recalled=votes)

    @property
    def model_id(self) -> str:
        return self._embedder.model_id

    async def embed_query(self, text: str) -> NDArray[np.float32]:
        """The query's embedding (cached for repeated queries)."""
        return await self._embed_query(" ".join(text.split()))

    async def _embed_query(self, text: str) -> NDArray[np.float32]:
        cached = self._cache.get(text)
        if cached is not None:
            return cached
        rows = await anyio.to_thread.run_sync(self._embedder.embed, [text], limiter=self._limiter)
        vector: NDArray[np.float32] = rows[0]
        self._cache[text] = vector
        return vector


@dataclass(frozen=True, slots=True)
class _Words:
    """What the query's words found (BM25 scores by tool) and the words themselves."""

    found: dict[str, float]
    words: frozenset[str]


def _server_of(tool_id: str) -> str:
    return tool_id.split(":", 1)[0]


def _hits(ranked: Sequence[Ranked], rows: dict[str, SearchHit], graph: ToolGraph | None) -> list[SearchHit]:
    hits = []
    for r in ranked:
        hit = dataclasses.replace(rows[r.tool_id], score=r.score, semantic=r.semantic)
        if graph is not None and r.tool_id in graph.index:
            before, after = graph.neighbours(r.tool_id, RELATED)
            hit = dataclasses.replace(hit, before=tuple(t for t, _ in before), after=tuple(t for t, _ in after))
        hits.append(hit)
    return hits


def _incomplete(starting: Sequence[str], unindexed: Sequence[str]) -> str | None:
    """The warning of an answer given before every server has listed and every listing is indexed; None once the
    index is complete."""
    parts = []
    if starting:
        parts.append(f"not yet listed (still starting): {', '.join(starting)}, whose tools are not searched")
    if unindexed:
        parts.append(f"listed but not yet indexed: the tools of {', '.join(unindexed)}, found by their words only")
    if not parts:
        return None
    return f"the index is not complete yet, {'; '.join(parts)}; search again in a few seconds for a complete answer"


def _checked_query(query: str) -> str:
    text = " ".join(query.split())
    if not text:
        raise InvalidRequestError("query must be a non-empty string describing what you want to do", field="query")
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidRequestError(f"query must be at most {MAX_QUERY_CHARS} characters", field="query")
    return text
