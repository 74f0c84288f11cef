"""Words split tool names the way people write them, and BM25 ranks the tool that shares the rarest ones."""

from __future__ import annotations

import math

import pytest

from gateway.services.lexical import Bm25Index, name_coverage, words

TOOLS = [
    ("fin:calculateNetIncome", "calculateNetIncome | Calculate the net income from revenue and expenses"),
    ("fin:calculateGrossMargin", "calculateGrossMargin | Compute the gross margin from revenue and cost of goods"),
    ("fin:get_exchange_rate", "get_exchange_rate | Get the exchange rate between two currencies"),
    ("weather:get_forecast", "get_forecast | Get the weather forecast for a city"),
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("calculateNetIncome", ["calculate", "net", "income"]),
        ("get_user_bookings", ["user", "booking"]),
        ("HTTPServer_status2", ["http", "server", "status2"]),
        ("list_queries", ["list", "query"]),
        ("What is the net income of this company?", ["net", "income", "company"]),
        ("I want to do it for you", []),
        ("a b c", []),
    ],
)
def test_words_split_camel_and_snake_case_drop_stop_words_and_fold_plurals(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_net_income_after_revenue_ranks_calculate_net_income_first() -> None:
    index = Bm25Index(TOOLS)

    hits = index.search("net income after revenue", limit=10)

    assert [tool for tool, _ in hits] == ["fin:calculateNetIncome", "fin:calculateGrossMargin"]
    assert hits[0][1] > hits[1][1] > 0


def test_a_score_is_idf_times_saturated_term_frequency() -> None:
    index = Bm25Index([("s:a", "alpha beta"), ("s:b", "gamma")])

    ((tool, score),) = index.search("alpha", limit=5)

    # idf = ln(1 + (2 - 1 + 0.5) / (1 + 0.5)); length 2 against an average of 1.5.
    norm = 1.2 * (1 - 0.75 + 0.75 * 2 / 1.5)
    assert tool == "s:a"
    assert score == pytest.approx(math.log(2) * 1 * 2.2 / (1 + norm), rel=1e-6)


def test_only_the_limit_best_are_returned_best_first() -> None:
    index = Bm25Index(TOOLS)

    hits = index.search("get the rate of revenue forecast", limit=2)

    assert len(hits) == 2
    assert hits[0][1] >= hits[1][1]
    assert {tool for tool, _ in index.search("get the rate of revenue forecast", limit=10)} == {
        "fin:calculateNetIncome", "fin:calculateGrossMargin", "fin:get_exchange_rate", "weather:get_forecast",
    }


def test_an_empty_index_finds_nothing() -> None:
    index = Bm25Index([])

    assert len(index) == 0
    assert index.search("net income", limit=5) == []


@pytest.mark.parametrize("query", ["zebra crossing", "the of and to", ""])
def test_a_query_sharing_no_word_with_any_tool_finds_nothing(query: str) -> None:
    assert Bm25Index(TOOLS).search(query, limit=5) == []


def test_phrases_tell_a_tool_named_word_for_word_from_one_sharing_every_single_word() -> None:
    index = Bm25Index([
        ("s:getGenderSupport", "getGenderSupport | Support services by gender and sexuality"),
        ("s:getGenderAndSexualitySupport", "getGenderAndSexualitySupport | Support services by gender"),
    ])
    query = "available gender and sexuality support services"

    plain = index.search(query, limit=5)
    phrased = index.search(query, limit=5, phrases=0.5)

    # Single words: both tools hold gender, sexuality, support and service once; the shorter text wins.
    assert [tool for tool, _ in plain] == ["s:getGenderSupport", "s:getGenderAndSexualitySupport"]
    # Pairs: "gender sexuality" and "sexuality support" are side by side only in the longer name.
    assert [tool for tool, _ in phrased] == ["s:getGenderAndSexualitySupport", "s:getGenderSupport"]


def test_a_phrase_adds_its_weight_times_the_pairs_own_bm25_score() -> None:
    index = Bm25Index([("s:a", "net income"), ("s:b", "income net")])

    (_, a_plain), (_, b_plain) = sorted(index.search("net income", limit=5))
    scores = dict(index.search("net income", limit=5, phrases=0.5))

    # One document of two holds the pair "net income"; each holds exactly one pair, the average.
    pair = math.log(1 + (2 - 1 + 0.5) / (1 + 0.5)) * 2.2 / (1 + 1.2)
    assert a_plain == pytest.approx(b_plain)
    assert scores["s:a"] == pytest.approx(a_plain + 0.5 * pair, rel=1e-6)
    assert scores["s:b"] == pytest.approx(b_plain, rel=1e-6)


@pytest.mark.parametrize(
    ("query", "name", "share"),
    [
        ("Retrieve information about postmodern theory.", "getPostmodernTheory", 1.0),
        ("What is the net income?", "calculateNetIncome", 2 / 3),
        ("my conference room bookings", "conference_room_booking", 1.0),
        ("book a conference room", "conference_room_booking", 2 / 3),
        ("weather in Paris", "get_exchange_rate", 0.0),
        ("anything at all", "get", 0.0),
    ],
)
def test_name_coverage_is_the_share_of_the_names_words_the_query_contains(query: str, name: str, share: float) -> None:
    assert name_coverage(frozenset(words(query)), frozenset(words(name))) == pytest.approx(share)
