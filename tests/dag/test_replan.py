"""Extending a running DAG with `replan`, and persisting a DAG with `to_document`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.dag import Dag, parse_dag, replan, to_document
from gateway.errors import DagProblem, DagValidationError
from tests.dag import TOOLS


def _echo(task_id: str, *deps: str, **arguments: Any) -> dict[str, Any]:
    return {"id": task_id, "tool": "util:echo", "arguments": arguments, "depends_on": list(deps)}


def _dag() -> Dag:
    document = {"tasks": [_echo("a"), _echo("b", "a"), _echo("c", x="$OUTPUT[b]")], "intent": "demo"}
    return parse_dag({**document, "options": {"timeout_ms": 1000}}, tool_schemas=TOOLS)


def test_replan_adds_new_tasks_after_the_existing_ones() -> None:
    dag = replan(_dag(), {"a"}, [_echo("d", "c"), _echo("e", y="$OUTPUT[a].z")], tool_schemas=TOOLS)

    assert [t.id for t in dag.tasks] == ["a", "b", "c", "d", "e"]
    assert dag.layers == (("a",), ("b", "e"), ("c",), ("d",))
    assert (dag.intent, dag.options.timeout_ms) == ("demo", 1000)


def test_replan_replaces_a_task_not_yet_run_in_its_place() -> None:
    new_c = {"id": "c", "tool": "fs:read_file", "arguments": {"path": "/tmp/x"}, "depends_on": ["a"]}

    dag = replan(_dag(), {"a"}, [new_c], tool_schemas=TOOLS)

    assert [t.id for t in dag.tasks] == ["a", "b", "c"]
    assert (dag.task("c").tool, dag.task("c").depends_on) == ("fs:read_file", ("a",))
    assert dag.layers == (("a",), ("b", "c"))


def test_replan_refuses_to_replace_a_finished_task() -> None:
    with pytest.raises(DagValidationError) as caught:
        replan(_dag(), {"a", "b"}, [_echo("b"), _echo("d", "b")], tool_schemas=TOOLS)

    assert caught.value.problems == [
        DagProblem("b", "id", "task 'b': already finished; a finished task cannot be replaced")
    ]


def test_replan_validates_the_result_as_a_whole() -> None:
    with pytest.raises(DagValidationError) as caught:
        replan(_dag(), {"a"}, [_echo("b", "c"), _echo("d", "ghost"), _echo("d")], tool_schemas=TOOLS)

    assert [p.message for p in caught.value.problems] == [
        "task 'd' (tasks[4]): duplicate id, already used by tasks[3]",
        "task 'd': depends_on: no task 'ghost'",
        "cycle: b -> c -> b",
    ]


def test_replan_needs_a_list_of_tasks() -> None:
    with pytest.raises(DagValidationError, match=r"replan: tasks must be a list .*, got an object"):
        replan(_dag(), set(), {"id": "d"}, tool_schemas=TOOLS)


def test_a_dag_round_trips_through_its_json_document() -> None:
    dag = replan(_dag(), set(), [_echo("d", "a", text="$OUTPUT[c] and $OUTPUT[b].x")], tool_schemas=TOOLS)

    document = json.loads(json.dumps(to_document(dag)))

    assert parse_dag(document, tool_schemas=TOOLS) == dag
    assert document["tasks"][3] == {
        "id": "d",
        "tool": "util:echo",
        "arguments": {"text": "$OUTPUT[c] and $OUTPUT[b].x"},
        "depends_on": ["a", "c", "b"],
    }
    assert document["options"] == {"max_concurrency": 8, "timeout_ms": 1000, "per_layer_validation": False}
