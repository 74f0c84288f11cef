"""Ranking mixes meaning and words, lifts the learned companions of the best hits, and weighs reliability."""

from __future__ import annotations

import math

import pytest

from gateway.graph import Edge, build_graph
from gateway.services.ranking import Candidate, Ranked, RankWeights, companions, rank, reliability_factor


def dependency(source: str, target: str) -> Edge:
    return Edge(source, target, "dependency", "observed")


def neutral(tool: str) -> float:
    return 1.0


def order(ranked: list[Ranked]) -> list[str]:
    return [r.tool_id for r in ranked]


CANDIDATES = [
    Candidate(tool_id="s:a", semantic=0.6),
    Candidate(tool_id="s:b", semantic=0.3),
    Candidate(tool_id="s:c", semantic=0.33),
]
"""A is the top hit; C scores slightly higher than B on text alone."""


def test_text_alone_mixes_closeness_to_each_signals_best_and_the_named_tool_with_the_best_scoring_one() -> None:
    candidates = [
        Candidate(tool_id="s:x", semantic=0.5, lexical=2.0),
        Candidate(tool_id="s:y", semantic=0.45, lexical=4.0, named=1.0),
        Candidate(tool_id="s:z", semantic=-0.1),
    ]

    ranked = rank(candidates, graph=None, reliability=neutral, weights=RankWeights())

    # Meaning: exp(-cosine gap / 0.05); words: exp(-(1 - share of the best BM25 score) / 0.3); names: 0.45 x 1^4.
    x = 0.5 * 1.0 + 0.5 * math.exp(-0.5 / 0.3)
    y = 0.5 * math.exp(-0.05 / 0.05) + 0.5 * 1.0 + 0.45
    z = 0.5 * math.exp(-0.5 / 0.05) + 0.5 * math.exp(-1.0 / 0.3)
    assert order(ranked) == ["s:y", "s:x", "s:z"]
    assert [r.score for r in ranked] == pytest.approx([1.0, x / y, z / y])
    assert [r.semantic for r in ranked] == [0.45, 0.5, -0.1]


@pytest.mark.parametrize(
    ("semantic", "lexical", "first"),
    [
        ((0.50, 0.49), (1.0, 5.0), "s:b"),
        ((0.60, 0.40), (4.5, 5.0), "s:a"),
    ],
)
def test_the_signal_whose_best_hit_stands_clear_decides_over_one_whose_top_hits_are_bunched(
    semantic: tuple[float, float], lexical: tuple[float, float], first: str
) -> None:
    candidates = [
        Candidate(tool_id="s:a", semantic=semantic[0], lexical=lexical[0]),
        Candidate(tool_id="s:b", semantic=semantic[1], lexical=lexical[1]),
    ]

    ranked = rank(candidates, graph=None, reliability=neutral, weights=RankWeights(graph=False))

    assert ranked[0].tool_id == first


def test_a_tool_whose_name_the_query_spells_out_in_full_counts_far_more_than_one_half_named() -> None:
    candidates = [
        Candidate(tool_id="s:full", semantic=0.5, named=1.0),
        Candidate(tool_id="s:half", semantic=0.5, named=0.5),
    ]

    ranked = rank(candidates, graph=None, reliability=neutral, weights=RankWeights())

    assert [r.score for r in ranked] == pytest.approx([1.0, (0.5 + 0.45 / 16) / (0.5 + 0.45)])


def test_without_a_spread_a_signal_counts_linearly_relative_to_its_best_candidate() -> None:
    weights = RankWeights(semantic=1.0, lexical=0.0, named=0.0, semantic_spread=None)

    ranked = rank(CANDIDATES, graph=None, reliability=neutral, weights=weights)

    assert [r.score for r in ranked] == pytest.approx([1.0, 0.33 / 0.6, 0.3 / 0.6])


def test_a_tool_linked_by_a_strong_edge_to_the_top_hit_moves_above_a_slightly_better_unlinked_one() -> None:
    graph = build_graph([], [dependency("s:a", "s:b")])

    ranked = rank(CANDIDATES, graph=graph, reliability=neutral, weights=RankWeights())

    assert order(ranked) == ["s:a", "s:b", "s:c"]
    # B: its text (0.3 below A's cosine: exp(-0.3 / 0.05)) + companion 0.35 x A's text (1) x edge 1.0
    # + PageRank prior 0.05 x 1 (the sink).
    assert ranked[1].score == pytest.approx(math.exp(-6.0) + 0.35 * 1.0 + 0.05)
    assert ranked[2].score == pytest.approx(math.exp(-0.27 / 0.05))


def test_without_the_graph_the_unlinked_tool_that_scores_higher_on_text_stays_above() -> None:
    graph = build_graph([], [dependency("s:a", "s:b")])

    ranked = rank(CANDIDATES, graph=graph, reliability=neutral, weights=RankWeights(graph=False))

    assert order(ranked) == ["s:a", "s:c", "s:b"]
    assert [r.score for r in ranked] == pytest.approx([1.0, math.exp(-0.27 / 0.05), math.exp(-0.3 / 0.05)])


def test_an_empty_graph_changes_nothing() -> None:
    with_empty = rank(CANDIDATES, graph=build_graph([], []), reliability=neutral, weights=RankWeights())
    without = rank(CANDIDATES, graph=None, reliability=neutral, weights=RankWeights())

    assert with_empty == without


def test_context_tools_mix_text_and_graph_as_the_reference_with_a_direct_edge_scoring_one() -> None:
    # 5 nodes, 3 edges: density 3 / 20 = 0.15, so alpha = 1 - 2 x 0.15 = 0.7.
    graph = build_graph(["s:lonely"], [dependency("s:a", "s:b"), dependency("s:b", "s:d"), dependency("s:e", "s:b")])
    candidates = [
        Candidate(tool_id="s:b", semantic=0.4),
        Candidate(tool_id="s:d", semantic=0.4),
        Candidate(tool_id="s:c", semantic=0.5),
    ]

    ranked = rank(candidates, graph=graph, reliability=neutral, weights=RankWeights(), context=["s:a"])

    # b: direct edge a -> b; d: only Adamic-Adar through b (degree 3); c: not in the graph.
    adamic_adar = 1 / math.log(3)
    text = math.exp(-0.1 / 0.05)
    assert order(ranked) == ["s:c", "s:b", "s:d"]
    assert [r.score for r in ranked] == pytest.approx(
        [0.7 * 1.0 + 0.3 * 0.0, 0.7 * text + 0.3 * 1.0, 0.7 * text + 0.3 * adamic_adar / 2]
    )


def test_an_unreliable_tool_falls_below_a_reliable_one_that_scores_lower_on_text() -> None:
    def reliability(tool: str) -> float:
        return 0.1 if tool == "s:a" else 1.0

    ranked = rank(CANDIDATES, graph=None, reliability=reliability, weights=RankWeights(semantic_spread=None))

    assert order(ranked) == ["s:c", "s:b", "s:a"]
    assert ranked[2].score == pytest.approx(0.1)


def test_a_score_above_one_is_capped_at_one() -> None:
    graph = build_graph([], [dependency("s:a", "s:b"), dependency("s:b", "s:a")])
    candidates = [Candidate(tool_id="s:a", semantic=0.6, lexical=1.0), Candidate(tool_id="s:b", semantic=0.6)]

    ranked = rank(candidates, graph=graph, reliability=lambda tool: 1.2, weights=RankWeights())

    assert ranked[0].tool_id == "s:a"
    assert ranked[0].score == 1.0


def test_companions_are_the_seeds_neighbours_strongest_link_first_without_the_seeds() -> None:
    graph = build_graph(
        [],
        [
            dependency("s:a", "s:b"),
            Edge("s:c", "s:a", "sequence", "observed"),
            Edge("s:a", "s:d", "provides", "observed"),
            dependency("s:a", "s:seed2"),
            Edge("s:seed2", "s:d", "dependency", "inferred"),
        ],
    )

    assert companions(graph, ["s:a", "s:seed2"], limit=10) == ["s:b", "s:d", "s:c"]
    assert companions(graph, ["s:a"], limit=2) == ["s:b", "s:seed2"]
    assert companions(graph, ["s:unknown"], limit=5) == []


@pytest.mark.parametrize(
    ("calls", "successes", "factor"),
    [
        (5, 1, 0.1),
        (10, 4, 0.1),
        (10, 5, 1.0),
        (10, 9, 1.0),
        (10, 10, 1.2),
        (20, 19, 1.2),
        (4, 0, 1.0),
        (4, 4, 1.0),
        (0, 0, 1.0),
    ],
)
def test_reliability_is_a_tenth_below_half_success_more_above_ninety_percent_and_neutral_under_five_calls(
    calls: int, successes: int, factor: float
) -> None:
    assert reliability_factor(calls, successes) == factor
