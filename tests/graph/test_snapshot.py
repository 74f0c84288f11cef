"""A `ToolGraph` snapshot: neighbours ordering, density, lookups, and the empty graph."""

from __future__ import annotations

import pytest

from gateway.graph import Edge, ToolGraph, adaptive_alpha, build_graph, candidate_multiplier


def test_neighbours_are_predecessors_then_successors_heaviest_first_ties_by_id() -> None:
    graph = build_graph(
        [],
        [
            Edge("p1", "t", "sequence", "inferred"),
            Edge("p2", "t", "dependency", "observed"),
            Edge("p3", "t", "contains", "observed"),
            Edge("t", "s2", "sequence", "observed"),
            Edge("t", "s1", "sequence", "observed"),
            Edge("t", "s3", "dependency", "inferred"),
        ],
    )

    before, after = graph.neighbours("t", limit=10)

    assert before == [("p2", 1.0), ("p3", 0.8), ("p1", 0.35)]
    assert after == [("s3", 0.7), ("s1", 0.5), ("s2", 0.5)]
    assert graph.neighbours("t", limit=1) == ([("p2", 1.0)], [("s3", 0.7)])
    assert graph.neighbours("unknown") == ([], [])


def test_density_counts_distinct_directed_edges_over_all_ordered_pairs() -> None:
    graph = build_graph(
        ["d"],
        [
            Edge("a", "b", "dependency", "observed"),
            Edge("a", "b", "sequence", "observed"),
            Edge("b", "a", "sequence", "observed"),
            Edge("b", "c", "provides", "observed"),
        ],
    )

    assert graph.density == pytest.approx(3 / (4 * 3))


def test_nodes_are_sorted_and_indexed_and_the_adjacency_is_directed() -> None:
    graph = build_graph(["c", "a"], [Edge("b", "a", "dependency", "observed")])

    assert graph.nodes == ("a", "b", "c")
    assert dict(graph.index) == {"a": 0, "b": 1, "c": 2}
    assert graph.adjacency[1, 0] == 1.0
    assert graph.adjacency[0, 1] == 0.0


def test_an_empty_graph_answers_every_question_without_error() -> None:
    assert ToolGraph.empty() is ToolGraph.empty()  # built once: a search with the graph off asks for it each time
    for graph in (build_graph([], []), ToolGraph.empty()):
        assert graph.nodes == ()
        assert graph.adjacency.shape == (0, 0)
        assert dict(graph.pagerank) == {}
        assert dict(graph.communities) == {}
        assert graph.density == 0.0
        assert graph.neighbours("a") == ([], [])
        assert graph.path("a", "b") is None
        assert graph.adamic_adar("a", "b") == 0.0
        assert graph.edge("a", "b") == 0.0
        assert graph.members(0) == ()


def test_a_graph_without_edges_ranks_evenly_and_leaves_each_tool_alone() -> None:
    graph = build_graph(["a", "b", "c", "d"], [])

    assert list(graph.pagerank.values()) == pytest.approx([0.25] * 4)
    assert sorted(graph.communities.values()) == [0, 1, 2, 3]


@pytest.mark.parametrize(("density", "alpha"), [(0.0, 1.0), (0.1, 0.8), (0.25, 0.5), (0.6, 0.5)])
def test_the_semantic_share_falls_with_density_down_to_one_half(density: float, alpha: float) -> None:
    assert adaptive_alpha(density) == pytest.approx(alpha)


@pytest.mark.parametrize(
    ("density", "multiplier"), [(0.0, 1.5), (0.01, 1.5), (0.0101, 2.0), (0.1, 2.0), (0.11, 3.0), (1.0, 3.0)]
)
def test_the_candidate_pool_widens_as_density_passes_one_hundredth_then_one_tenth(
    density: float, multiplier: float
) -> None:
    assert candidate_multiplier(density) == multiplier
