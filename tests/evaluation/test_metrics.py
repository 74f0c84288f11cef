"""The evaluation metrics give the values worked out by hand on small rankings."""

from __future__ import annotations

import math

import pytest

from gateway.evaluation.metrics import (
    averaged,
    complete_at,
    f1,
    hit_at,
    latency,
    mrr_at,
    ndcg_at,
    recall_at,
    retrieval_row,
)

RANKED = ["a", "b", "c", "d", "e"]
"""Relevant {b, d}: found at ranks 2 and 4."""
RELEVANT = {"b", "d"}


def test_hit_at_k_is_one_once_a_relevant_tool_is_in_the_top_k() -> None:
    assert [hit_at(RANKED, RELEVANT, k) for k in (1, 2, 10)] == [0.0, 1.0, 1.0]
    assert hit_at(RANKED, {"z"}, 10) == 0.0


def test_mrr_is_one_over_the_rank_of_the_first_relevant_tool_within_k() -> None:
    assert mrr_at(RANKED, RELEVANT, 10) == 0.5
    assert mrr_at(RANKED, {"d"}, 10) == 0.25
    assert mrr_at(RANKED, {"d"}, 3) == 0.0
    assert mrr_at(RANKED, {"a", "b"}, 10) == 1.0


def test_recall_at_k_is_the_share_of_relevant_tools_in_the_top_k() -> None:
    assert [recall_at(RANKED, RELEVANT, k) for k in (1, 2, 3, 4)] == [0.0, 0.5, 0.5, 1.0]
    assert recall_at(RANKED, {"a", "b", "z"}, 10) == pytest.approx(2 / 3)
    assert recall_at(RANKED, set(), 10) == 0.0


def test_completeness_at_k_needs_every_relevant_tool_in_the_top_k() -> None:
    assert [complete_at(RANKED, RELEVANT, k) for k in (2, 3, 4, 5)] == [0.0, 0.0, 1.0, 1.0]
    assert complete_at(RANKED, {"a", "z"}, 10) == 0.0
    assert complete_at(RANKED, set(), 10) == 0.0


def test_ndcg_at_ten_with_binary_relevance() -> None:
    # DCG = 1/log2(3) + 1/log2(5); ideal = 1 + 1/log2(3).
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))

    assert ndcg_at(RANKED, RELEVANT, 10) == pytest.approx(expected)
    assert ndcg_at(RANKED, RELEVANT, 10) == pytest.approx(0.650921, abs=1e-6)
    assert ndcg_at(RANKED, {"a", "b"}, 10) == pytest.approx(1.0)
    assert ndcg_at(RANKED, {"a", "z"}, 10) == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert ndcg_at(RANKED, {"e"}, 4) == 0.0


def test_ndcg_at_k_caps_the_ideal_at_k_relevant_tools() -> None:
    assert ndcg_at(["a", "x"], {"a", "b", "c"}, 1) == 1.0


@pytest.mark.parametrize(
    ("predicted", "gold", "expected"),
    [
        ({"a", "b", "c"}, {"b", "c", "d"}, 2 / 3),
        ({"a"}, {"a", "b", "c"}, 0.5),
        ({"a", "b"}, {"a", "b"}, 1.0),
        ({"a"}, {"b"}, 0.0),
        ({"a"}, set(), 0.0),
        (set(), {"a"}, 0.0),
        (set(), set(), 1.0),
        ({("a", "b"), ("b", "c")}, {("a", "b")}, 2 / 3),
    ],
)
def test_f1_of_two_sets(predicted: set[object], gold: set[object], expected: float) -> None:
    assert f1(predicted, gold) == pytest.approx(expected)


def test_a_retrieval_row_holds_each_metric_of_the_command() -> None:
    row = retrieval_row(RANKED, RELEVANT)

    assert row == pytest.approx({
        "hit@1": 0.0, "mrr@10": 0.5, "recall@5": 1.0, "recall@10": 1.0, "ndcg@10": 0.650921,
        "comp@5": 1.0, "comp@10": 1.0,
    }, abs=1e-6)


def test_averaged_rows_are_means_rounded_to_four_digits() -> None:
    rows = [{"hit@1": 1.0, "mrr@10": 1.0}, {"hit@1": 0.0, "mrr@10": 1 / 3}, {"hit@1": 0.0, "mrr@10": 0.0}]

    assert averaged(rows) == {"hit@1": 0.3333, "mrr@10": 0.4444}
    assert averaged([]) == {}


def test_latency_gives_the_median_and_the_95th_percentile() -> None:
    assert latency([1.0, 2.0, 3.0, 4.0, 5.0]) == {"p50": 3.0, "p95": 4.8}
    assert latency([]) == {"p50": 0.0, "p95": 0.0}
