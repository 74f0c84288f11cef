"""Cheapest paths of at most four nodes (cost 1/weight), and the confidence a path's hops give."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest

from gateway.graph import Edge, build_graph, path_confidence
from tests.graph import networkx_twin, random_edges


def _strong(u: str, v: str) -> Edge:
    return Edge(u, v, "dependency", "observed")  # weight 1.0, cost 1.0


def _weak(u: str, v: str) -> Edge:
    return Edge(u, v, "sequence", "inferred")  # weight 0.35, cost ~2.86


def test_a_two_hop_path_of_strong_edges_beats_a_weak_direct_edge() -> None:
    graph = build_graph([], [_weak("a", "z"), _strong("a", "m"), _strong("m", "z")])

    assert graph.path("a", "z") == ["a", "m", "z"]


def test_the_cheapest_path_of_at_most_four_nodes_wins_over_a_cheaper_longer_one() -> None:
    long_cheap = [_strong("a", "c"), _strong("c", "d"), _strong("d", "e"), _strong("e", "z")]  # cost 4.0
    graph = build_graph([], [*long_cheap, _weak("a", "b"), _weak("b", "z")])  # cost ~5.71

    assert graph.path("a", "z") == ["a", "b", "z"]
    assert graph.path("a", "z", max_nodes=5) == ["a", "c", "d", "e", "z"]


def test_no_path_is_returned_beyond_four_nodes() -> None:
    graph = build_graph([], [_strong("x1", "x2"), _strong("x2", "x3"), _strong("x3", "x4"), _strong("x4", "x5")])

    assert graph.path("x1", "x4") == ["x1", "x2", "x3", "x4"]
    assert graph.path("x1", "x5") is None


def test_paths_follow_edge_direction_and_need_known_distinct_tools() -> None:
    graph = build_graph([], [_strong("a", "b"), _strong("b", "a")])

    assert graph.path("b", "a") == ["b", "a"]
    assert build_graph([], [_strong("a", "b")]).path("b", "a") is None
    assert graph.path("a", "a") is None
    assert graph.path("a", "unknown") is None


@pytest.mark.parametrize(("hops", "confidence"), [(1, 0.95), (2, 0.80), (3, 0.65), (4, 0.50), (7, 0.50)])
def test_path_confidence_falls_with_each_hop(hops: int, confidence: float) -> None:
    assert path_confidence(hops) == confidence


def test_path_confidence_refuses_a_path_without_hops() -> None:
    with pytest.raises(ValueError, match="at least one hop"):
        path_confidence(0)


@pytest.mark.parametrize("seed", range(5))
def test_path_costs_the_same_as_the_cheapest_simple_path_found_by_enumeration(seed: int) -> None:
    nodes, edges = random_edges(seed + 300, max_nodes=12)
    graph, twin = build_graph(nodes, edges), networkx_twin(nodes, edges)

    def cost(path: list[str]) -> float:
        return sum(1.0 / float(twin.edges[a, b]["weight"]) for a, b in itertools.pairwise(path))

    for u, v in itertools.permutations(nodes, 2):
        for max_nodes in (2, 3, 4):
            short = list(nx.all_simple_paths(twin, u, v, cutoff=max_nodes - 1))
            found = graph.path(u, v, max_nodes=max_nodes)
            assert (found is None) == (not short)
            if found is not None:
                assert len(found) <= max_nodes
                assert cost(found) == pytest.approx(min(cost(p) for p in short))
