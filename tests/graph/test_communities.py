"""Louvain communities: obvious cliques are found, the seed makes them repeatable, lone tools stand alone."""

from __future__ import annotations

import itertools

from gateway.graph import Edge, build_graph
from tests.graph import random_edges


def _clique(names: list[str]) -> list[Edge]:
    return [Edge(u, v, "dependency", "observed") for u, v in itertools.permutations(names, 2)]


def test_two_cliques_joined_by_one_edge_are_two_communities() -> None:
    left, right = [f"a{i}" for i in range(5)], [f"b{i}" for i in range(5)]
    graph = build_graph([], [*_clique(left), *_clique(right), Edge("a0", "b0", "sequence", "inferred")])

    assert len({graph.communities[n] for n in left}) == 1
    assert len({graph.communities[n] for n in right}) == 1
    assert graph.community_of("a0") != graph.community_of("b0")
    assert graph.members(graph.communities["b3"]) == tuple(right)


def test_communities_are_the_same_for_the_same_seed_whatever_the_input_order() -> None:
    nodes, edges = random_edges(7, max_nodes=60)
    first = build_graph(nodes, edges, seed=3)
    again = build_graph(list(reversed(nodes)), list(reversed(edges)), seed=3)

    assert dict(first.communities) == dict(again.communities)


def test_communities_are_numbered_from_zero_in_the_order_of_their_first_member() -> None:
    nodes, edges = random_edges(11, max_nodes=60)
    labels = [build_graph(nodes, edges).communities[n] for n in sorted(nodes)]

    assert labels[0] == 0
    assert all(label <= max(labels[:i], default=-1) + 1 for i, label in enumerate(labels))


def test_an_isolated_tool_is_alone_in_its_own_community() -> None:
    graph = build_graph(["lonely", "solo"], _clique(["a", "b", "c"]))

    assert graph.members(graph.communities["lonely"]) == ("lonely",)
    assert graph.members(graph.communities["solo"]) == ("solo",)
    assert graph.community_of("unknown") is None
    assert graph.members(99) == ()
