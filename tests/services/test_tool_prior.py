"""The tool prior: a multi-label logistic regression from intent embeddings to the tools that served them."""

from __future__ import annotations

import numpy as np
import pytest

from gateway.services.tool_prior import MIN_PROBABILITY, fit


def clusters(rng: np.random.Generator, n: int = 40) -> tuple[np.ndarray, list[list[str]]]:
    """Two groups of unit vectors around two orthogonal directions: the first used a and b, the second c."""
    centres = np.eye(8)[:2]
    vectors, tools = [], []
    for k in range(n):
        group = k % 2
        v = centres[group] + 0.2 * rng.standard_normal(8)
        vectors.append(v / np.linalg.norm(v))
        tools.append(["s:a", "s:b"] if group == 0 else ["s:c"])
    return np.array(vectors), tools


def test_an_intent_near_past_intents_gets_their_tools_and_not_the_others() -> None:
    vectors, tools = clusters(np.random.default_rng(1))

    prior = fit(vectors, tools)

    assert prior is not None
    assert prior.tools == ("s:a", "s:b", "s:c") and prior.samples == 40 and prior.dimensions == 8
    near_first = prior.probabilities(np.eye(8)[0])
    near_second = prior.probabilities(np.eye(8)[1])
    assert near_first["s:a"] > 0.9 and near_first["s:b"] > 0.9
    assert near_first.get("s:c", 0.0) < 0.1
    assert near_second["s:c"] > 0.9 and near_second.get("s:a", 0.0) < 0.1


def test_tools_below_the_minimum_probability_are_left_out() -> None:
    vectors, tools = clusters(np.random.default_rng(2))
    prior = fit(vectors, tools)

    assert prior is not None
    answer = prior.probabilities(np.eye(8)[0])
    assert "s:c" not in answer
    assert all(p >= MIN_PROBABILITY for p in answer.values())


def test_a_tool_used_by_every_past_intent_is_likely_for_any_intent() -> None:
    vectors, _ = clusters(np.random.default_rng(3))

    prior = fit(vectors, [["s:login"]] * len(vectors))

    assert prior is not None
    assert prior.probabilities(np.eye(8)[5])["s:login"] > 0.9


def test_a_warm_start_from_the_previous_fit_lands_on_the_same_model() -> None:
    vectors, tools = clusters(np.random.default_rng(4))
    cold = fit(vectors, tools)
    assert cold is not None

    warm = fit(vectors, [*tools[:-1], ["s:c", "s:d"]], previous=cold)

    assert warm is not None and warm.tools == ("s:a", "s:b", "s:c", "s:d")
    for probe in (np.eye(8)[0], np.eye(8)[1]):
        cold_p, warm_p = cold.probabilities(probe), warm.probabilities(probe)
        for tool in ("s:a", "s:b", "s:c"):
            assert warm_p.get(tool, 0.0) == pytest.approx(cold_p.get(tool, 0.0), abs=0.05)


def test_only_the_most_used_tools_get_a_model_when_there_are_too_many() -> None:
    vectors, tools = clusters(np.random.default_rng(6))
    tools = [[*used, f"s:once_{k}"] for k, used in enumerate(tools)]

    prior = fit(vectors, tools, max_tools=3)

    assert prior is not None
    assert prior.tools == ("s:a", "s:b", "s:c")
    assert prior.weights.shape == (9, 3)
    assert prior.probabilities(np.eye(8)[1])["s:c"] > 0.9


def test_nothing_to_learn_from_gives_no_prior_and_a_foreign_vector_gets_nothing() -> None:
    assert fit(np.zeros((0, 8)), []) is None
    assert fit(np.ones((2, 8)), [["s:a"]]) is None
    assert fit(np.ones((2, 8)), [[], []]) is None

    vectors, tools = clusters(np.random.default_rng(5))
    prior = fit(vectors, tools)
    assert prior is not None
    assert prior.probabilities(np.ones(5)) == {}
