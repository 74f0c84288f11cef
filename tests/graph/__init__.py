"""Tests of the pure learned graph; `random_edges` and `networkx_twin` feed the comparisons with networkx."""

from __future__ import annotations

import networkx as nx
import numpy as np

from gateway.graph import EDGE_TYPE_WEIGHT, SOURCE_FACTOR, Edge

TYPES = sorted(EDGE_TYPE_WEIGHT)
ORIGINS = sorted(SOURCE_FACTOR)


def random_edges(seed: int, *, max_nodes: int = 40) -> tuple[list[str], list[Edge]]:
    """Random node ids and edges of random types, origins and counts: some nodes send no edge (dangling), some
    pairs get several types, some edges fall under the weight threshold."""
    rng = np.random.default_rng(seed)
    nodes = [f"t{i:03d}" for i in range(int(rng.integers(2, max_nodes + 1)))]
    edges = []
    for source in nodes:
        fanout = 0 if rng.random() < 0.2 else int(rng.integers(1, 6))
        for target in rng.choice(nodes, size=fanout):
            edge_type, origin = str(rng.choice(TYPES)), str(rng.choice(ORIGINS))
            edges.append(Edge(source, str(target), edge_type, origin, count=int(rng.integers(1, 5))))
    return nodes, edges


def networkx_twin(nodes: list[str], edges: list[Edge]) -> nx.DiGraph:
    """The directed graph `build_graph` should build, made by networkx: heaviest entering edge per pair."""
    graph = nx.DiGraph()
    graph.add_nodes_from(nodes)
    for edge in edges:
        if edge.enters_graph:
            known = graph.get_edge_data(edge.source, edge.target, {"weight": 0.0})["weight"]
            graph.add_edge(edge.source, edge.target, weight=max(known, edge.weight))
    return graph
