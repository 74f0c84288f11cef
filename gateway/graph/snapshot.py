"""`ToolGraph`: an immutable snapshot of the learned graph with its PageRank, communities and lookups.

`build_graph` is the one way to make one. It is CPU-bound (Louvain dominates): callers run it off the event
loop and swap the new snapshot in; queries on a snapshot are cheap and never mutate it. The graph is rebuilt
from all stored edges after each update rather than patched.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from types import MappingProxyType

import numpy as np
from scipy import sparse

from gateway.graph.communities import louvain
from gateway.graph.pagerank import pagerank
from gateway.graph.paths import Vector, adamic_adar, cheapest_path, inverse_log_degree
from gateway.graph.weights import Edge

Ranked = list[tuple[str, float]]
TypedWeights = dict[tuple[str, str], dict[str, float]]


@dataclass(frozen=True, eq=False)
class ToolGraph:
    """Nodes sorted by id (`index` maps id -> row); `adjacency[i, j]` is the heaviest edge i -> j."""

    nodes: tuple[str, ...]
    index: Mapping[str, int]
    adjacency: sparse.csr_array
    pagerank: Mapping[str, float]
    communities: Mapping[str, int]
    density: float
    _types: Mapping[tuple[str, str], Mapping[str, float]] = field(repr=False)
    _incoming: sparse.csr_array = field(repr=False)
    _undirected: sparse.csr_array = field(repr=False)
    _inverse_log_degree: Vector = field(repr=False)
    _members: Mapping[int, tuple[str, ...]] = field(repr=False)

    @classmethod
    def empty(cls) -> ToolGraph:
        """The graph before anything was learned: no nodes, no edges (one shared instance: it is immutable, and
        building it anew cost every search with the graph turned off)."""
        return _empty()

    def edge(self, u: str, v: str) -> float:
        """The weight of the heaviest edge u -> v, 0.0 if there is none."""
        return max(self.edge_types(u, v).values(), default=0.0)

    def edge_types(self, u: str, v: str) -> Mapping[str, float]:
        """Each edge type linking u -> v with its weight (empty if none)."""
        return self._types.get((u, v), MappingProxyType({}))

    def neighbours(self, tool: str, limit: int = 10) -> tuple[Ranked, Ranked]:
        """(often before, often after): predecessors and successors of `tool`, heaviest first, ties by id."""
        row = self.index.get(tool)
        if row is None:
            return [], []
        return self._ranked(self._incoming, row, limit), self._ranked(self.adjacency, row, limit)

    def path(self, u: str, v: str, max_nodes: int = 4) -> list[str] | None:
        """The cheapest directed path u -> v (cost 1/weight per edge) of at most `max_nodes` nodes, or None."""
        if u not in self.index or v not in self.index:
            return None
        found = cheapest_path(self.adjacency, self._incoming, self.index[u], self.index[v], max_nodes)
        return None if found is None else [self.nodes[i] for i in found]

    def adamic_adar(self, u: str, v: str) -> float:
        """Adamic-Adar index of u and v on the undirected graph (0.0 if either is unknown)."""
        if u not in self.index or v not in self.index:
            return 0.0
        return adamic_adar(self._undirected, self._inverse_log_degree, self.index[u], self.index[v])

    def community_of(self, tool: str) -> int | None:
        """The Louvain community of `tool`, None if it is not in the graph."""
        return self.communities.get(tool)

    def members(self, community: int) -> tuple[str, ...]:
        """The tools of `community`, sorted by id (empty for an unknown community)."""
        return self._members.get(community, ())

    def _ranked(self, matrix: sparse.csr_array, row: int, limit: int) -> Ranked:
        """The row's entries as (id, weight), heaviest first, at most `limit`."""
        start, end = matrix.indptr[row], matrix.indptr[row + 1]
        pairs = zip(matrix.indices[start:end].tolist(), matrix.data[start:end].tolist(), strict=True)
        ranked = sorted(((self.nodes[col], weight) for col, weight in pairs), key=lambda p: (-p[1], p[0]))
        return ranked[: max(limit, 0)]


def build_graph(nodes: Iterable[str], edges: Iterable[Edge], *, seed: int = 42) -> ToolGraph:
    """The snapshot of `nodes` plus the endpoints of the edges that enter (weight > MIN_WEIGHT, no self-loop).

    Parallel edges of different types between one pair collapse to the heaviest in `adjacency`; each type's
    weight stays readable through `edge_types`. `seed` fixes Louvain.
    """
    types = _typed_weights(edges)
    names = tuple(sorted(set(nodes).union(*types)))
    index = {name: i for i, name in enumerate(names)}
    adjacency = _adjacency(types, index)
    undirected = adjacency.maximum(adjacency.T).tocsr()
    ranks = pagerank(adjacency)
    labels = louvain(undirected, seed=seed)
    return ToolGraph(
        nodes=names,
        index=MappingProxyType(index),
        adjacency=adjacency,
        pagerank=MappingProxyType(dict(zip(names, ranks.tolist(), strict=True))),
        communities=MappingProxyType(dict(zip(names, labels, strict=True))),
        density=_density(adjacency.nnz, len(names)),
        _types=MappingProxyType({pair: MappingProxyType(weights) for pair, weights in types.items()}),
        _incoming=adjacency.T.tocsr(),
        _undirected=undirected,
        _inverse_log_degree=inverse_log_degree(undirected),
        _members=_members(names, labels),
    )


def _typed_weights(edges: Iterable[Edge]) -> TypedWeights:
    """For each linked pair, each type's heaviest weight, over the edges that enter the graph."""
    types: TypedWeights = {}
    for edge in edges:
        if edge.enters_graph:
            weights = types.setdefault((edge.source, edge.target), {})
            weights[edge.edge_type] = max(weights.get(edge.edge_type, 0.0), edge.weight)
    return types


def _adjacency(types: TypedWeights, index: Mapping[str, int]) -> sparse.csr_array:
    """The directed weighted matrix, one entry per pair: its heaviest type."""
    size = len(index)
    rows = np.fromiter((index[u] for u, _ in types), dtype=np.int64, count=len(types))
    cols = np.fromiter((index[v] for _, v in types), dtype=np.int64, count=len(types))
    data = np.fromiter((max(w.values()) for w in types.values()), dtype=np.float64, count=len(types))
    matrix = sparse.csr_array((data, (rows, cols)), shape=(size, size))
    matrix.sort_indices()
    return matrix


def _density(edge_count: int, node_count: int) -> float:
    """E / (V(V-1)) over distinct directed edges; 0.0 below two nodes."""
    return edge_count / (node_count * (node_count - 1)) if node_count > 1 else 0.0


def _members(names: tuple[str, ...], labels: list[int]) -> Mapping[int, tuple[str, ...]]:
    """Each community's tools, in id order (names are sorted)."""
    grouped: dict[int, list[str]] = {}
    for name, label in zip(names, labels, strict=True):
        grouped.setdefault(label, []).append(name)
    return MappingProxyType({label: tuple(group) for label, group in grouped.items()})


@cache
def _empty() -> ToolGraph:
    return build_graph((), ())
