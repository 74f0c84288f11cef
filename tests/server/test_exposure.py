"""The found tools each client keeps in its list: order, bound, and which hits join."""

from __future__ import annotations

from gateway.server.exposure import FoundTools, worth_listing


def test_found_tools_are_listed_in_the_order_first_found_and_each_client_keeps_its_own() -> None:
    found = FoundTools()
    assert found.add("alice", ["t:best", "t:second"])
    assert found.add("alice", ["t:third", "t:best"])
    assert not found.add("alice", ["t:second"])  # nothing new: the list did not change
    assert found.add("bob", ["t:other"])
    assert found.of("alice") == ["t:best", "t:second", "t:third"]
    assert found.of("bob") == ["t:other"]
    assert found.of("carol") == []


def test_past_the_bound_the_tool_found_least_recently_leaves_first() -> None:
    found = FoundTools(capacity=3)
    found.add(None, ["t:a"])
    found.add(None, ["t:b"])
    found.add(None, ["t:c"])
    found.add(None, ["t:a"])  # found again: now the most recent
    assert found.add(None, ["t:d"])
    assert found.of(None) == ["t:a", "t:c", "t:d"]
    found.add(None, [f"t:{i}" for i in range(10)])
    assert found.of(None) == ["t:0", "t:1", "t:2"]  # the best hits of a long search stay


def test_hits_far_below_the_best_stay_out_of_the_list() -> None:
    assert worth_listing([("t:a", 1.0), ("t:b", 0.74), ("t:c", 0.31), ("t:d", 0.05)]) == ["t:a", "t:b", "t:c"]
    assert worth_listing([]) == []
