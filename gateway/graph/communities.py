"""Louvain communities of the learned graph, through python-louvain on its undirected weighted form.

Deterministic for a given seed: nodes enter the networkx graph in index order, and communities are numbered
in the order of their first member, so the numbering does not depend on python-louvain's internals.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from scipy import sparse

if TYPE_CHECKING:
    import networkx as nx

RESOLUTION = 1.0


def louvain(undirected: sparse.csr_array, *, seed: int, resolution: float = RESOLUTION) -> list[int]:
    """The community of each node of the symmetric `undirected` matrix; an isolated node is alone in its own."""
    size = undirected.shape[0]
    if size == 0:
        return []
    import community as community_louvain  # networkx and Louvain load at the first refresh, not at start

    partition: dict[int, int] = community_louvain.best_partition(
        _networkx_graph(undirected), weight="weight", resolution=resolution, random_state=seed
    )
    return _numbered_by_first_member([partition[node] for node in range(size)])


def _networkx_graph(undirected: sparse.csr_array) -> nx.Graph:
    """Nodes 0..n-1 in order, one weighted edge per pair (the upper triangle of the symmetric matrix)."""
    import networkx as nx

    graph = nx.Graph()
    graph.add_nodes_from(range(undirected.shape[0]))
    upper = sparse.triu(undirected, k=1).tocoo()
    graph.add_weighted_edges_from(zip(upper.row.tolist(), upper.col.tolist(), upper.data.tolist(), strict=True))
    return graph


def _numbered_by_first_member(labels: list[int]) -> list[int]:
    """The same partition, communities renumbered 0, 1, ... as their first member appears."""
    renumber: dict[int, int] = {}
    return [renumber.setdefault(label, len(renumber)) for label in labels]
