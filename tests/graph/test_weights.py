"""Edge weights: type x source, promotion after three sightings, and the 0.3 threshold for entering the graph."""

from __future__ import annotations

import pytest

from gateway.graph import MIN_WEIGHT, Edge, build_graph, edge_weight


@pytest.mark.parametrize(
    ("edge_type", "source", "weight"),
    [
        ("dependency", "observed", 1.0),
        ("dependency", "inferred", 0.7),
        ("contains", "observed", 0.8),
        ("contains", "template", 0.4),
        ("provides", "inferred", 0.49),
        ("sequence", "observed", 0.5),
        ("sequence", "inferred", 0.35),
        ("sequence", "template", 0.25),
    ],
)
def test_an_edge_weighs_its_type_weight_times_its_source_factor(edge_type: str, source: str, weight: float) -> None:
    assert edge_weight(edge_type, source) == pytest.approx(weight)


def test_an_unknown_edge_type_or_source_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'uses'"):
        edge_weight("uses", "observed")
    with pytest.raises(ValueError, match="'guessed'"):
        Edge("a", "b", "dependency", "guessed")


def test_an_inferred_edge_seen_three_times_weighs_as_observed() -> None:
    assert Edge("a", "b", "dependency", "inferred", count=2).weight == pytest.approx(0.7)
    assert Edge("a", "b", "dependency", "inferred", count=3).weight == pytest.approx(1.0)
    assert Edge("a", "b", "dependency", "template", count=9).weight == pytest.approx(0.5)


def test_only_edges_heavier_than_the_threshold_enter_the_graph() -> None:
    light = Edge("a", "b", "sequence", "template")
    heavy = Edge("c", "d", "sequence", "inferred")
    graph = build_graph([], [light, heavy])

    assert light.weight < MIN_WEIGHT < heavy.weight
    assert graph.edge("a", "b") == 0.0
    assert graph.edge("c", "d") == pytest.approx(0.35)
    assert graph.nodes == ("c", "d")


def test_a_self_loop_never_enters_the_graph() -> None:
    graph = build_graph(["a"], [Edge("a", "a", "dependency", "observed")])

    assert graph.edge("a", "a") == 0.0
    assert graph.adjacency.nnz == 0


def test_parallel_edges_of_different_types_collapse_to_the_heaviest_but_keep_each_type() -> None:
    graph = build_graph(
        [],
        [
            Edge("a", "b", "sequence", "observed"),
            Edge("a", "b", "dependency", "inferred"),
            Edge("a", "b", "dependency", "inferred", count=5),
        ],
    )

    assert graph.edge("a", "b") == pytest.approx(1.0)
    assert dict(graph.edge_types("a", "b")) == pytest.approx({"sequence": 0.5, "dependency": 1.0})
    assert graph.adjacency.nnz == 1
