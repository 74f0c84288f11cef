"""`parse_dag` refuses a bad DAG before anything runs, naming every problem with its task and field."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dag import parse_dag
from gateway.errors import DagProblem, DagValidationError, InvalidRequestError
from tests.dag import TOOLS


def _problems(document: Any) -> list[DagProblem]:
    with pytest.raises(DagValidationError) as caught:
        parse_dag(document, tool_schemas=TOOLS)
    return caught.value.problems


def _only(document: Any) -> DagProblem:
    problems = _problems(document)
    assert len(problems) == 1, problems
    return problems[0]


def _echo(task_id: Any, *deps: Any, **arguments: Any) -> dict[str, Any]:
    return {"id": task_id, "tool": "util:echo", "arguments": arguments, "depends_on": list(deps)}


def test_a_duplicate_id_is_named_with_both_positions() -> None:
    problem = _only({"tasks": [_echo("a"), _echo("b"), _echo("a")]})

    assert problem == DagProblem("a", "id", "task 'a' (tasks[2]): duplicate id, already used by tasks[0]")


@pytest.mark.parametrize("bad_id", ["1st", "has space", "", "x" * 65, "dot.ted"])
def test_a_malformed_id_is_refused_with_the_rule(bad_id: str) -> None:
    problem = _only({"tasks": [_echo(bad_id)]})

    assert problem.task is None
    assert problem.field == "tasks[0].id"
    assert problem.message.startswith("tasks[0]: id '")
    assert problem.message.endswith(
        "is malformed: use 1 to 64 letters, digits, '_' or '-', starting with a letter or '_'"
    )


def test_an_id_of_64_characters_is_accepted() -> None:
    assert parse_dag({"tasks": [_echo("a" * 64)]}, tool_schemas=TOOLS).tasks[0].id == "a" * 64


def test_an_id_that_is_not_a_string_or_is_missing_is_refused() -> None:
    problems = _problems({"tasks": [_echo(7), {"tool": "util:echo"}]})

    assert [p.message for p in problems] == [
        "tasks[0]: id must be a string, got a number",
        "tasks[1]: missing key 'id'",
    ]


def test_a_task_that_is_not_an_object_is_refused() -> None:
    problem = _only({"tasks": [_echo("a"), ["b", "util:echo"]]})

    assert problem == DagProblem(
        None, "tasks[1]", "tasks[1]: a task must be an object {id, tool, arguments, depends_on}, got a list"
    )


def test_missing_and_unknown_task_keys_are_refused_with_a_suggestion() -> None:
    problems = _problems({"tasks": [{"id": "a", "args": {}, "depends": []}]})

    assert [(p.task, p.field, p.message) for p in problems] == [
        ("a", "args", "task 'a': unknown key 'args' (did you mean 'arguments'?)"),
        ("a", "depends", "task 'a': unknown key 'depends' (did you mean 'depends_on'?)"),
        ("a", "tool", "task 'a': missing key 'tool' (a 'server:tool' id)"),
    ]


def test_a_tool_that_is_not_a_server_tool_string_is_refused() -> None:
    problems = _problems({"tasks": [{"id": "a", "tool": 3}, {"id": "b", "tool": "read_file"}]})

    assert [p.message for p in problems] == [
        "task 'a': tool must be a 'server:tool' id, got a number",
        "task 'b': tool 'read_file' is not a 'server:tool' id (did you mean 'fs:read_file'?)",
    ]


def test_an_unknown_tool_is_refused_with_the_closest_known_ids() -> None:
    problem = _only({"tasks": [{"id": "a", "tool": "fs:read_fil", "arguments": {"path": "x"}}]})

    assert problem.field == "tool"
    assert problem.message.startswith("task 'a': unknown tool 'fs:read_fil' (did you mean 'fs:read_file'")


def test_an_unknown_tool_on_the_wrong_server_is_matched_by_its_bare_name() -> None:
    problem = _only({"tasks": [{"id": "a", "tool": "files:fetch", "arguments": {}}]})

    assert "did you mean 'web:fetch'" in problem.message


def test_an_unknown_tool_without_anything_close_gets_no_suggestion() -> None:
    assert (
        _only({"tasks": [{"id": "a", "tool": "zzz:qqqqqq"}]}).message == "task 'a': unknown tool 'zzz:qqqqqq'"
    )


def test_a_dependency_on_a_missing_task_is_named_with_a_suggestion() -> None:
    problem = _only({"tasks": [_echo("fetch"), _echo("b", "fetc")]})

    assert problem == DagProblem(
        "b", "depends_on", "task 'b': depends_on: no task 'fetc' (did you mean 'fetch'?)"
    )


def test_a_task_depending_on_itself_is_refused() -> None:
    problem = _only({"tasks": [_echo("a", "a")]})

    assert problem == DagProblem("a", "depends_on", "task 'a': depends_on: a task cannot depend on itself")


def test_depends_on_must_be_a_list_of_strings() -> None:
    problems = _problems({"tasks": [{"id": "a", "tool": "util:echo", "depends_on": "b"}, _echo("b", "a", 3)]})

    assert [p.message for p in problems] == [
        "task 'a': depends_on must be a list of task ids, got a string",
        "task 'b': depends_on[1] must be a task id, got a number",
    ]


def test_a_cycle_is_named_task_by_task() -> None:
    problem = _only({"tasks": [_echo("a", "b"), _echo("b", "c"), _echo("c", "a"), _echo("d", "a")]})

    assert problem == DagProblem("a", "depends_on", "cycle: a -> b -> c -> a")


def test_a_reference_that_closes_a_cycle_is_named_with_the_argument_holding_it() -> None:
    problem = _only({"tasks": [_echo("a", "b"), _echo("b", text="see $OUTPUT[a].summary")]})

    assert problem == DagProblem(
        "b", "arguments.text", "cycle: a -> b -> a ('b' uses $OUTPUT[a].summary in argument 'text')"
    )


def test_a_reference_to_a_missing_task_is_named_with_its_argument() -> None:
    problem = _only({"tasks": [_echo("read"), _echo("b", files=["$OUTPUT[raed].items"])]})

    assert problem == DagProblem(
        "b",
        "arguments.files[0]",
        "task 'b': argument 'files[0]': $OUTPUT[raed].items refers to no task 'raed' (did you mean 'read'?)",
    )


def test_a_reference_to_the_task_itself_is_refused() -> None:
    problem = _only({"tasks": [_echo("a", x="$OUTPUT[a]")]})

    assert problem.message == "task 'a': argument 'x': $OUTPUT[a] refers to the task's own output"


def test_a_malformed_reference_is_refused_with_the_expected_form() -> None:
    problem = _only({"tasks": [_echo("a"), _echo("b", x='$OUTPUT["a"]')]})

    assert problem.message == (
        "task 'b': argument 'x': malformed reference '$OUTPUT[\"a\"]' "
        "(write $OUTPUT[task_id] or $OUTPUT[task_id].path.to[0])"
    )


def test_arguments_not_matching_the_schema_name_the_task_and_the_argument() -> None:
    tasks = [
        {"id": "a", "tool": "fs:write_file", "arguments": {"path": 3}},
        {"id": "b", "tool": "fs:read_file", "arguments": {"path": "x", "mode": "r"}},
        {"id": "c", "tool": "web:fetch", "arguments": {"url": "ftp://x", "options": {"max_length": 0}}},
    ]

    assert [(p.task, p.field, p.message) for p in _problems({"tasks": tasks})] == [
        ("a", "arguments.content", "task 'a': missing required argument 'content'"),
        ("a", "arguments.path", "task 'a': argument 'path': 3 is not of type 'string'"),
        ("b", "arguments.mode", "task 'b': unknown argument 'mode' (expected: path)"),
        (
            "c",
            "arguments.options.max_length",
            "task 'c': argument 'options.max_length': 0 is less than the minimum of 1",
        ),
        ("c", "arguments.url", "task 'c': argument 'url': 'ftp://x' does not match '^https?://'"),
    ]


def test_a_schema_that_declares_its_draft_is_checked_with_that_draft() -> None:
    problem = _only({"tasks": [{"id": "s", "tool": "math:sum", "arguments": {"values": [1, "two"]}}]})

    assert problem.message == "task 's': argument 'values[1]': 'two' is not of type 'number'"


def test_an_argument_holding_a_reference_is_not_checked_before_the_run() -> None:
    tasks = [
        _echo("a"),
        {
            "id": "b",
            "tool": "fs:write_file",
            "arguments": {"path": "$OUTPUT[a]", "content": "$OUTPUT[a].x y"},
        },
    ]

    assert parse_dag({"tasks": tasks}, tool_schemas=TOOLS).task("b").depends_on == ("a",)


def test_only_values_holding_a_reference_escape_the_schema_check_before_the_run() -> None:
    tasks = [
        _echo("a"),
        {"id": "s", "tool": "math:sum", "arguments": {"values": ["$OUTPUT[a]", "two"]}},
        {"id": "t", "tool": "math:sum", "arguments": {"values": {"x": "$OUTPUT[a]"}}},
    ]

    assert [p.message for p in _problems({"tasks": tasks})] == [
        "task 's': argument 'values[1]': 'two' is not of type 'number'",
        "task 't': argument 'values': {'x': '$OUTPUT[a]'} is not of type 'array'",
    ]


def test_a_tool_with_an_invalid_schema_or_no_schema_accepts_any_object() -> None:
    tasks = [
        {"id": "a", "tool": "broken:tool", "arguments": {"x": 1}},
        {"id": "b", "tool": "util:echo", "arguments": {"y": [1]}},
    ]

    assert len(parse_dag({"tasks": tasks}, tool_schemas=TOOLS).tasks) == 2


def test_arguments_must_be_an_object_of_bounded_depth() -> None:
    deep: Any = "leaf"
    for _ in range(70):
        deep = [deep]
    problems = _problems({"tasks": [{"id": "a", "tool": "util:echo", "arguments": [1]}, _echo("b", x=deep)]})

    assert [p.message for p in problems] == [
        "task 'a': arguments must be an object, got a list",
        "task 'b': arguments must be JSON nested at most 64 levels deep",
    ]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_concurrency": 0}, "options.max_concurrency must be an integer from 1 to 64, got 0"),
        ({"max_concurrency": 65}, "options.max_concurrency must be an integer from 1 to 64, got 65"),
        ({"max_concurrency": True}, "options.max_concurrency must be an integer from 1 to 64, got true"),
        ({"timeout_ms": 2.5}, "options.timeout_ms must be an integer from 1 to 600000, got 2.5"),
        ({"timeout_ms": 600_001}, "options.timeout_ms must be an integer from 1 to 600000, got 600001"),
        ({"timeout_ms": "30s"}, "options.timeout_ms must be an integer from 1 to 600000, got '30s'"),
        ({"per_layer_validation": "yes"}, "options.per_layer_validation must be true or false, got 'yes'"),
        ({"timeout": 5}, "options: unknown key 'timeout' (did you mean 'timeout_ms'?)"),
        (
            {"retries": 5},
            "options: unknown key 'retries' (expected: max_concurrency, timeout_ms, per_layer_validation)",
        ),
        ([1], "options must be an object {max_concurrency, timeout_ms, per_layer_validation}, got a list"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options: Any, message: str) -> None:
    assert _only({"tasks": [_echo("a")], "options": options}).message == message


def test_options_at_their_limits_are_accepted() -> None:
    options = {"max_concurrency": 64, "timeout_ms": 600_000.0, "per_layer_validation": True}

    dag = parse_dag({"tasks": [_echo("a")], "options": options}, tool_schemas=TOOLS)

    assert (dag.options.max_concurrency, dag.options.timeout_ms, dag.options.per_layer_validation) == (
        64,
        600_000,
        True,
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (None, "execute_dag arguments must be an object {tasks, intent?, options?}, got null"),
        ([], "execute_dag arguments must be an object {tasks, intent?, options?}, got a list"),
        ({}, "tasks: missing; list the tasks to run as [{id, tool, arguments, depends_on}]"),
        ({"tasks": {}}, "tasks must be a list [{id, tool, arguments, depends_on}], got an object"),
        ({"tasks": []}, "tasks: the list is empty; a DAG needs at least one task"),
        (
            {"tasks": [{"id": f"t{i}", "tool": "util:echo"} for i in range(201)]},
            "tasks: at most 200 tasks in a DAG, got 201",
        ),
        ({"tasks": [{"id": "a", "tool": "util:echo"}], "intent": 5}, "intent must be a string, got a number"),
        (
            {"tasks": [{"id": "a", "tool": "util:echo"}], "task": []},
            "execute_dag: unknown key 'task' (did you mean 'tasks'?)",
        ),
    ],
)
def test_a_malformed_document_is_refused_with_a_clear_message(document: Any, message: str) -> None:
    assert _only(document).message == message


def test_two_hundred_tasks_are_accepted() -> None:
    tasks = [
        {"id": f"t{i}", "tool": "util:echo", "depends_on": [f"t{i - 1}"] if i else []} for i in range(200)
    ]

    assert len(parse_dag({"tasks": tasks}, tool_schemas=TOOLS).layers) == 200


def test_several_problems_are_reported_together_in_one_error() -> None:
    document = {
        "tasks": [
            _echo("a", "b"),
            _echo("a"),
            {"id": "c", "tool": "fs:read_fle", "arguments": {}},
            {"id": "d", "tool": "fs:read_file", "arguments": {"path": 1}, "depends_on": ["ghost"]},
            _echo("b", "a"),
        ],
        "options": {"max_concurrency": 100},
    }

    with pytest.raises(DagValidationError) as caught:
        parse_dag(document, tool_schemas=TOOLS)

    error = caught.value
    assert isinstance(error, InvalidRequestError)
    assert [p.task for p in error.problems] == [None, "a", "c", "d", "d", "a"]
    assert str(error).splitlines() == [
        "6 problems in the DAG:",
        "- options.max_concurrency must be an integer from 1 to 64, got 100",
        "- task 'a' (tasks[1]): duplicate id, already used by tasks[0]",
        "- task 'c': unknown tool 'fs:read_fle' (did you mean 'fs:read_file' or 'fs:write_file'?)",
        "- task 'd': argument 'path': 1 is not of type 'string'",
        "- task 'd': depends_on: no task 'ghost'",
        "- cycle: a -> b -> a",
    ]
    assert error.field == "options.max_concurrency"


def test_huge_strings_are_cut_short_in_messages() -> None:
    problem = _only({"tasks": [{"id": "a", "tool": "x" * 100_000}]})

    assert len(problem.message) < 200
    assert problem.message.endswith("...' is not a 'server:tool' id")


def test_omitted_arguments_are_checked_as_an_empty_object() -> None:
    problem = _only({"tasks": [{"id": "a", "tool": "fs:read_file"}]})

    assert problem == DagProblem("a", "arguments.path", "task 'a': missing required argument 'path'")


def test_odd_keys_are_quoted_in_fields() -> None:
    problems = _problems(
        {"tasks": [{"id": "a", "tool": "fs:read_file", "arguments": {"path": "p", "a.b": 1}}, {"": 1}]}
    )

    fields = [(p.field, p.message) for p in problems]
    assert ('arguments["a.b"]', "task 'a': unknown argument '[\"a.b\"]' (expected: path)") in fields
    assert ('tasks[1][""]', "tasks[1]: unknown key '' (expected: id, tool, arguments, depends_on)") in fields


def test_past_a_hundred_problems_the_rest_are_only_counted() -> None:
    tasks = [
        {"id": f"t{i}", "tool": "util:echo", "depends_on": [f"m{j}" for j in range(200)]} for i in range(200)
    ]

    problems = _problems({"tasks": tasks})

    assert len(problems) == 101
    assert problems[-1] == DagProblem(None, "tasks", "... and at least 39900 more problems")


def test_a_schema_with_a_remote_ref_is_never_fetched_and_leaves_arguments_unchecked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fetched: list[Any] = []
    monkeypatch.setattr("urllib.request.urlopen", lambda *args, **kwargs: fetched.append(args))
    tools = {
        "remote:tool": {"type": "object", "properties": {"x": {"$ref": "https://example.invalid/x.json"}}}
    }

    dag = parse_dag(
        {"tasks": [{"id": "a", "tool": "remote:tool", "arguments": {"x": 1}}]}, tool_schemas=tools
    )

    assert dag.task("a").arguments == {"x": 1}
    assert fetched == []
