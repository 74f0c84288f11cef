"""The tool embeddings held in memory, for a search without a database round trip for meaning.

At a few thousand tools the whole index is a few MB and one matrix product ranks it in well under a
millisecond, where each pool fetched from pgvector costs a round trip (and a search may need three: the pool,
the learned companions, the lifted servers' other tools). The copy is read from the database in one query
and read again when the index changed; pgvector's HNSW index stays the path for catalogs too large to hold
(`MAX_TOOLS`) and while no copy has been read.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

MAX_TOOLS = 50_000
"""Above this many embedded tools the search asks pgvector (at 384 dimensions, 50,000 tools are ~77 MB)."""
CHUNK_ROWS = 1024
"""Rows per matrix-vector product: OpenBLAS splits a larger one over threads that then spin for ~10 ms after it
returns, burning the cores the query's embedding needs (12 ms of CPU per search at 10,000 tools, against 1.5)."""


@dataclass(frozen=True, slots=True)
class ToolVectors:
    """Unit vectors of the embedded tools by one model, one row per tool id."""

    ids: Sequence[str]
    matrix: NDArray[np.float32]
    model_id: str
    rows: dict[str, int] = field(init=False)
    by_server: dict[str, NDArray[np.int64]] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "rows", {tool_id: i for i, tool_id in enumerate(self.ids)})
        servers: dict[str, list[int]] = {}
        for i, tool_id in enumerate(self.ids):
            servers.setdefault(tool_id.split(":", 1)[0], []).append(i)
        object.__setattr__(self, "by_server", {s: np.asarray(rows, dtype=np.int64) for s, rows in servers.items()})

    def __len__(self) -> int:
        return len(self.ids)

    def pool(self, query: NDArray[np.float32], *, size: int, extra: Iterable[str] = (),
             server: str | None = None) -> dict[str, float]:
        """The `size` tools nearest to `query` (of `server` only, if given) plus the `extra` ones, each with its
        cosine similarity (0.0 for an `extra` tool without a vector), as the database's pool query gives them."""
        if not self.ids:
            return dict.fromkeys(extra, 0.0)
        vector = np.asarray(query, dtype=np.float32)
        if server is None:  # the whole matrix as it is: indexing it by every row would copy it
            candidates = np.arange(len(self.ids))
            similarity = _products(self.matrix, vector)
        else:
            candidates = self.by_server.get(server, np.zeros(0, dtype=np.int64))
            similarity = _products(self.matrix[candidates], vector)
        if 0 < size < len(candidates):
            nearest = np.argpartition(-similarity, size - 1)[:size]
        elif size > 0:
            nearest = np.arange(len(candidates))
        else:
            nearest = np.zeros(0, dtype=np.int64)
        found = {self.ids[candidates[i]]: float(similarity[i]) for i in nearest}
        for tool_id in extra:
            if tool_id not in found:
                row = self.rows.get(tool_id)
                found[tool_id] = 0.0 if row is None else float(self.matrix[row] @ vector)
        return found


def _products(matrix: NDArray[np.float32], vector: NDArray[np.float32]) -> NDArray[np.float32]:
    """``matrix @ vector`` in blocks of `CHUNK_ROWS`, each on the calling thread."""
    out = np.empty(len(matrix), dtype=np.float32)
    for start in range(0, len(matrix), CHUNK_ROWS):
        np.matmul(matrix[start : start + CHUNK_ROWS], vector, out=out[start : start + CHUNK_ROWS])
    return out
