"""What a workflow run teaches: dependency edges for `depends_on`, sequence edges between layers, no redundancy."""

from __future__ import annotations

import pytest

from gateway.graph import workflow_edges


def test_a_diamond_gives_four_dependency_edges_and_no_redundant_sequence_edge() -> None:
    tasks = [("a", "t:a", ()), ("b", "t:b", ("a",)), ("c", "t:c", ("a",)), ("d", "t:d", ("b", "c"))]

    edges = workflow_edges(tasks, [["a"], ["b", "c"], ["d"]])

    assert edges == [
        ("t:a", "t:b", "dependency"),
        ("t:a", "t:c", "dependency"),
        ("t:b", "t:d", "dependency"),
        ("t:c", "t:d", "dependency"),
    ]


def test_two_layers_without_dependencies_give_sequence_edges_from_each_tool_to_each_next() -> None:
    tasks = [("x", "t:x", ()), ("y", "t:y", ()), ("z", "t:z", ())]

    edges = workflow_edges(tasks, [["x", "y"], ["z"]])

    assert edges == [("t:x", "t:z", "sequence"), ("t:y", "t:z", "sequence")]


def test_a_sequence_edge_is_added_only_where_no_dependency_links_the_pair() -> None:
    tasks = [("a", "t:a", ()), ("e", "t:e", ()), ("b", "t:b", ("a",))]

    edges = workflow_edges(tasks, [["a", "e"], ["b"]])

    assert edges == [("t:a", "t:b", "dependency"), ("t:e", "t:b", "sequence")]


def test_one_tool_used_twice_makes_no_self_loop_and_repeated_pairs_are_counted_once() -> None:
    tasks = [
        ("r1", "fs:read", ()),
        ("r2", "fs:read", ("r1",)),
        ("w1", "fs:write", ("r2",)),
        ("w2", "fs:write", ("r2",)),
    ]

    edges = workflow_edges(tasks, [["r1"], ["r2"], ["w1", "w2"]])

    assert edges == [("fs:read", "fs:write", "dependency")]


def test_an_empty_run_teaches_nothing() -> None:
    assert workflow_edges([], []) == []


def test_a_dependency_on_an_unknown_task_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'ghost'"):
        workflow_edges([("a", "t:a", ("ghost",))], [["a"]])
