"""Topological layers of a parsed DAG, and the dependencies that references imply."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dag import Dag, DagOptions, Task, parse_dag
from gateway.dag.order import cycles, layers
from tests.dag import TOOLS


def _task(task_id: str, *deps: str, **arguments: Any) -> dict[str, Any]:
    return {"id": task_id, "tool": "util:echo", "arguments": arguments, "depends_on": list(deps)}


def test_a_diamond_dag_gets_layers_a_then_b_and_c_then_d() -> None:
    dag = parse_dag(
        {"tasks": [_task("a"), _task("b", "a"), _task("c", "a"), _task("d", "b", "c")]}, tool_schemas=TOOLS
    )

    assert dag.layers == (("a",), ("b", "c"), ("d",))


def test_ids_within_a_layer_keep_submission_order() -> None:
    dag = parse_dag(
        {"tasks": [_task("d", "c", "b"), _task("c", "a"), _task("b", "a"), _task("a")]}, tool_schemas=TOOLS
    )

    assert dag.layers == (("a",), ("c", "b"), ("d",))


def test_a_task_sits_one_layer_above_its_deepest_dependency() -> None:
    tasks = [_task("a"), _task("b", "a"), _task("c", "b"), _task("d", "a", "c"), _task("e")]

    dag = parse_dag({"tasks": tasks}, tool_schemas=TOOLS)

    assert dag.layers == (("a", "e"), ("b",), ("c",), ("d",))


def test_a_reference_adds_its_task_to_depends_on_after_the_explicit_ones() -> None:
    tasks = [
        _task("a"),
        _task("b"),
        _task("c", "b", text="$OUTPUT[a].title and $OUTPUT[b]", n=["$OUTPUT[a]"]),
    ]

    dag = parse_dag({"tasks": tasks}, tool_schemas=TOOLS)

    assert dag.task("c").depends_on == ("b", "a")
    assert dag.layers == (("a", "b"), ("c",))


def test_a_reference_deep_in_nested_arguments_adds_a_dependency() -> None:
    tasks = [_task("a"), _task("b", deep={"list": [1, {"x": "$OUTPUT[a].items[0]"}]})]

    dag = parse_dag({"tasks": tasks}, tool_schemas=TOOLS)

    assert dag.task("b").depends_on == ("a",)
    assert dag.layers == (("a",), ("b",))


def test_repeated_dependencies_are_kept_once() -> None:
    tasks = [_task("a"), _task("b", "a", "a", x="$OUTPUT[a]", y="$OUTPUT[a].z")]

    assert parse_dag({"tasks": tasks}, tool_schemas=TOOLS).task("b").depends_on == ("a",)


def test_parsed_tasks_keep_their_tool_arguments_and_the_options_given() -> None:
    document = {
        "tasks": [{"id": "read", "tool": "fs:read_file", "arguments": {"path": "/etc/hosts"}}],
        "intent": "read the hosts file",
        "options": {"max_concurrency": 2, "timeout_ms": 500, "per_layer_validation": True},
    }

    dag = parse_dag(document, tool_schemas=TOOLS)

    assert dag == Dag(
        (Task("read", "fs:read_file", {"path": "/etc/hosts"}, ()),),
        "read the hosts file",
        DagOptions(max_concurrency=2, timeout_ms=500, per_layer_validation=True),
    )


def test_options_default_to_8_at_once_30_seconds_and_no_pauses() -> None:
    dag = parse_dag({"tasks": [_task("a")], "options": {}}, tool_schemas=TOOLS)

    assert dag.options == DagOptions(max_concurrency=8, timeout_ms=30_000, per_layer_validation=False)


def test_asking_for_an_unknown_task_id_raises_key_error() -> None:
    dag = parse_dag({"tasks": [_task("a")]}, tool_schemas=TOOLS)

    with pytest.raises(KeyError):
        dag.task("b")


def test_layering_a_graph_with_a_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        layers(["a", "b"], {"a": ["b"], "b": ["a"]})


def test_cycles_are_named_from_their_earliest_task_and_tasks_behind_them_are_not_cycles() -> None:
    deps = {"x": [], "c": ["a"], "a": ["b"], "b": ["c"], "after": ["a"], "p": ["q"], "q": ["p"]}

    assert cycles(list(deps), deps) == [["c", "a", "b", "c"], ["p", "q", "p"]]
