"""Substituting `$OUTPUT[...]` references from finished tasks' outputs, and checking the result."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.dag import Task, check_resolved, output_value, resolve_arguments
from gateway.errors import DagProblem, DagValidationError, OutputReferenceError
from tests.dag import TOOLS

OUTPUTS: dict[str, Any] = {
    "a": {"title": "Report", "body": "text", "items": [{"name": "x", "size": 3}, {"name": "y", "size": 5}]},
    "b": [10, 20, 30],
    "n": 42,
    "s": "plain",
    "odd": {"key with spaces": {"x": True}, "0": "zero"},
}


def _resolve(**arguments: Any) -> dict[str, Any]:
    return resolve_arguments(Task("c", "util:echo", arguments, ("a",)), OUTPUTS)


def _failure(**arguments: Any) -> OutputReferenceError:
    with pytest.raises(OutputReferenceError) as caught:
        _resolve(**arguments)
    return caught.value


def test_a_whole_string_reference_is_replaced_by_the_value_itself_of_any_type() -> None:
    resolved = _resolve(obj="$OUTPUT[a]", lst="$OUTPUT[b]", num="$OUTPUT[n]", text="$OUTPUT[s]")

    assert resolved == {"obj": OUTPUTS["a"], "lst": [10, 20, 30], "num": 42, "text": "plain"}


def test_paths_follow_keys_and_indices_at_any_depth_of_the_arguments() -> None:
    resolved = _resolve(
        name="$OUTPUT[a].items[1].name",
        nested={"deep": ["$OUTPUT[a].items[0].size", {"last": "$OUTPUT[b][-1]"}]},
        quoted='$OUTPUT[odd]["key with spaces"].x',
        digits='$OUTPUT[odd]["0"]',
    )

    assert resolved == {"name": "y", "nested": {"deep": [3, {"last": 30}]}, "quoted": True, "digits": "zero"}


def test_references_inside_a_longer_string_are_substituted_as_text() -> None:
    resolved = _resolve(text="Summary of $OUTPUT[a].title and $OUTPUT[b]: $OUTPUT[a].items[0], $OUTPUT[s].")

    assert resolved == {"text": 'Summary of Report and [10,20,30]: {"name":"x","size":3}, plain.'}


def test_strings_without_references_and_other_values_are_left_as_they_are() -> None:
    arguments = {"a": "costs $5", "b": None, "c": [1.5, False], "d": "$OUTPUT"}

    assert _resolve(**arguments) == arguments


def test_a_substituted_value_is_a_copy_of_the_output() -> None:
    resolved = _resolve(obj="$OUTPUT[a]")
    resolved["obj"]["items"].clear()

    assert len(OUTPUTS["a"]["items"]) == 2


def test_an_index_out_of_range_names_the_path_and_the_list_length() -> None:
    error = _failure(x="$OUTPUT[a].items[3].name")

    assert str(error) == "task 'c': $OUTPUT[a].items[3]: index 3 out of range (list of 2)"
    assert (error.task, error.reference) == ("c", "$OUTPUT[a].items[3]")


def test_a_missing_key_names_the_keys_that_exist() -> None:
    error = _failure(x="Title: $OUTPUT[a].titel")

    assert str(error) == "task 'c': $OUTPUT[a].titel: no key 'titel' (keys: title, body, items)"


def test_a_path_that_goes_into_the_wrong_kind_of_value_says_what_it_found() -> None:
    assert str(_failure(x="$OUTPUT[n].value")) == "task 'c': $OUTPUT[n].value: no key 'value' in a number"
    assert str(_failure(x="$OUTPUT[a][0]")) == (
        "task 'c': $OUTPUT[a][0]: index 0 needs a list, got an object (keys: title, body, items)"
    )


def test_a_reference_to_a_task_without_output_is_refused() -> None:
    assert str(_failure(x="$OUTPUT[zz]")) == "task 'c': $OUTPUT[zz]: task 'zz' has no output yet"


@pytest.mark.parametrize(
    ("structured", "text", "value"),
    [
        ({"rows": [1]}, '{"ignored": true}', {"rows": [1]}),
        (None, '{"rows": [1, 2]}', {"rows": [1, 2]}),
        (None, " 17 ", 17),
        (None, "not json {", "not json {"),
        (None, "NaN", "NaN"),
        (None, "", ""),
        (None, None, None),
    ],
)
def test_a_result_contributes_its_structured_content_else_its_text_as_json_else_the_text(
    structured: Any, text: str | None, value: Any
) -> None:
    assert output_value(structured, text) == value


def test_resolved_arguments_are_checked_against_the_schema_naming_task_and_argument() -> None:
    task = Task("b", "fs:write_file", {"path": "$OUTPUT[n]", "content": "$OUTPUT[s]"}, ("n", "s"))
    resolved = resolve_arguments(task, OUTPUTS)

    with pytest.raises(DagValidationError) as caught:
        check_resolved(task, resolved, TOOLS["fs:write_file"])

    assert caught.value.problems == [
        DagProblem("b", "arguments.path", "task 'b': argument 'path': 42 is not of type 'string'")
    ]


def test_resolved_arguments_that_fit_or_have_no_schema_pass() -> None:
    check_resolved(Task("b", "fs:read_file", {}, ()), {"path": "/tmp"}, TOOLS["fs:read_file"])
    check_resolved(Task("b", "util:echo", {}, ()), {"anything": [1]}, None)


def test_an_escaped_reference_reaches_the_tool_as_a_literal_and_implies_no_dependency() -> None:
    from gateway.dag import parse_dag

    nested = {"tasks": [{"id": "x", "tool": "util:echo", "arguments": {"text": "$$OUTPUT[x].result and $OUTPUT[s]"}},
                        {"id": "y", "tool": "util:echo", "arguments": {"text": "$$OUTPUT[zzz]"}}]}
    dag = parse_dag({"tasks": [{"id": "s", "tool": "util:echo", "arguments": {"text": "hi"}},
                               {"id": "c", "tool": "util:echo", "arguments": {"text": "ok", "dag": nested}}]},
                    tool_schemas={"util:echo": None})

    assert dag.task("c").depends_on == ("s",)  # the escaped ones name no task of this DAG, and are no error
    resolved = resolve_arguments(dag.task("c"), OUTPUTS)
    assert resolved["dag"]["tasks"][0]["arguments"]["text"] == "$OUTPUT[x].result and plain"
    assert resolved["dag"]["tasks"][1]["arguments"]["text"] == "$OUTPUT[zzz]"
