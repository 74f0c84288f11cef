"""Cheapest short paths and shared-neighbour scores over the sparse matrices of a `ToolGraph`.

A path's cost is the sum of 1/weight over its edges, so heavy (often seen, strongly typed) edges make cheap
paths. The node bound is part of the problem, not a filter afterwards: the cheapest path overall may be too
long while a slightly dearer short one exists, so the search relaxes edges hop by hop (Bellman-Ford limited
to ``max_nodes - 1`` rounds), which finds the cheapest path among the short ones. The last round only looks at
the goal's predecessors, which keeps a query near a millisecond on graphs of ten edges per node.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

import numpy as np
import numpy.typing as npt
from scipy import sparse

Vector = npt.NDArray[np.float64]
Route = tuple[float, tuple[int, ...]]


def cheapest_path(
    adjacency: sparse.csr_array, incoming: sparse.csr_array, start: int, goal: int, max_nodes: int
) -> list[int] | None:
    """The cheapest directed path `start` -> `goal` of at most `max_nodes` nodes, or None (also when
    `start` is `goal`: a tool is not its own prerequisite). `incoming` is the transpose of `adjacency`."""
    if start == goal or max_nodes < 2:
        return None
    best: dict[int, Route] = {start: (0.0, (start,))}
    frontier = [start]
    for _ in range(max_nodes - 2):
        frontier = sorted(_relax(adjacency, _routes(best, frontier, goal), best))
    _last_hop(incoming, _routes(best, frontier, goal), best, goal)
    return list(best[goal][1]) if goal in best else None


def _routes(best: dict[int, Route], frontier: list[int], goal: int) -> dict[int, Route]:
    """The routes to extend next: those that improved last round, except the goal's (it is the end)."""
    return {node: best[node] for node in frontier if node != goal}


def _last_hop(incoming: sparse.csr_array, routes: dict[int, Route], best: dict[int, Route], goal: int) -> None:
    """The final hop can only end at the goal: try the goal's predecessors, not every node's successors."""
    start, end = incoming.indptr[goal], incoming.indptr[goal + 1]
    sources, weights = incoming.indices[start:end].tolist(), incoming.data[start:end].tolist()
    for source, weight in zip(sources, weights, strict=True):
        if source in routes:
            cost, route = routes[source]
            if cost + 1.0 / weight < best.get(goal, (np.inf,))[0]:
                best[goal] = (cost + 1.0 / weight, (*route, goal))


def _relax(adjacency: sparse.csr_array, settled: dict[int, Route], best: dict[int, Route]) -> set[int]:
    """One more hop from each route of the previous round; the nodes whose best route got cheaper."""
    improved: set[int] = set()
    for node, (cost, route) in settled.items():
        start, end = adjacency.indptr[node], adjacency.indptr[node + 1]
        targets, weights = adjacency.indices[start:end].tolist(), adjacency.data[start:end].tolist()
        for target, weight in zip(targets, weights, strict=True):
            candidate = cost + 1.0 / weight
            if candidate < best.get(target, (np.inf,))[0]:
                best[target] = (candidate, (*route, target))
                improved.add(target)
    return improved


def inverse_log_degree(undirected: sparse.csr_array) -> Vector:
    """1/ln(deg) per node of the symmetric matrix; 0 where the degree is at most 1 (no Adamic-Adar share)."""
    degree = np.diff(undirected.indptr)
    weights = np.zeros(degree.shape[0])
    several = degree > 1
    weights[several] = 1.0 / np.log(degree[several])
    return weights


def adamic_adar(undirected: sparse.csr_array, inverse_log: Vector, u: int, v: int) -> float:
    """Sum of 1/ln(deg(w)) over the neighbours w shared by `u` and `v` (neither of them), deg(w) > 1."""
    shared = np.intersect1d(_row(undirected, u), _row(undirected, v), assume_unique=True)
    shared = shared[(shared != u) & (shared != v)]
    return float(inverse_log[shared].sum())


def _row(matrix: sparse.csr_array, node: int) -> npt.NDArray[np.int32]:
    """The column indices of `node`'s row: its neighbours."""
    indices: npt.NDArray[np.int32] = matrix.indices[matrix.indptr[node] : matrix.indptr[node + 1]]
    return indices


def reaches(after: Mapping[str, Iterable[str]], start: str, goal: str, avoid: Collection[str] = ()) -> bool:
    """Whether `goal` can be reached from `start` following `after` (successors by node), never through `avoid`."""
    frontier, seen = [start], {start, *avoid}
    while frontier:
        node = frontier.pop()
        if node == goal:
            return True
        for nxt in after.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    return False
