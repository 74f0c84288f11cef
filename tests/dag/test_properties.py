"""Whatever JSON arrives as `execute_dag` arguments, `parse_dag` gives a sound DAG or a clear refusal."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.dag import Dag, parse_dag, to_document
from gateway.errors import DagValidationError
from tests.dag import TOOLS

IDS = ["a", "b", "c", "d", "e", "fetch_1", "x-y", "1bad", "", "a b"]
TOOL_IDS = [*TOOLS, "fs:read_fil", "read_file", "nope", ":", "a:"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)
references = st.builds(
    "{}$OUTPUT[{}]{}{}".format,
    st.sampled_from(["", "see "]),
    st.sampled_from(IDS),
    st.sampled_from(["", ".title", "[0]", '["k k"]', ".items[-1].name", "[x]"]),
    st.sampled_from(["", " and more"]),
)
arguments = st.dictionaries(
    st.sampled_from(["path", "content", "url", "values", "x"]),
    references | json_values | st.lists(references, max_size=2),
    max_size=3,
)


@st.composite
def near_valid_tasks(draw: st.DrawFn) -> dict[str, Any]:
    task: dict[str, Any] = {"id": draw(st.sampled_from(IDS)), "tool": draw(st.sampled_from(TOOL_IDS))}
    if draw(st.booleans()):
        task["arguments"] = draw(arguments)
    if draw(st.booleans()):
        task["depends_on"] = draw(st.lists(st.sampled_from(IDS), max_size=3))
    if draw(st.integers(0, 9)) == 0:
        task[draw(st.sampled_from(["id", "tool", "arguments", "depends_on", "extra"]))] = draw(json_values)
    return task


@st.composite
def near_valid_documents(draw: st.DrawFn) -> Any:
    document: dict[str, Any] = {
        "tasks": draw(st.lists(near_valid_tasks() | json_values, min_size=1, max_size=6))
    }
    if draw(st.booleans()):
        document["options"] = draw(
            st.fixed_dictionaries(
                {},
                optional={
                    "max_concurrency": st.integers(-2, 70) | json_values,
                    "timeout_ms": st.integers(0, 700_000),
                    "per_layer_validation": st.booleans() | json_values,
                },
            )
        )
    if draw(st.integers(0, 4)) == 0:
        document[draw(st.sampled_from(["intent", "tasks", "other"]))] = draw(json_values)
    return document


@st.composite
def valid_documents(draw: st.DrawFn) -> dict[str, Any]:
    """Acyclic by construction: a task depends on, or refers to, earlier tasks only."""
    count = draw(st.integers(1, 12))
    tasks = []
    for index in range(count):
        earlier = [f"t{i}" for i in range(index)]
        deps = draw(st.lists(st.sampled_from(earlier), max_size=3)) if earlier else []
        refs = draw(st.lists(st.sampled_from(earlier), max_size=2)) if earlier else []
        args = {f"r{n}": f"$OUTPUT[{ref}].x" for n, ref in enumerate(refs)}
        tasks.append({"id": f"t{index}", "tool": "util:echo", "arguments": args, "depends_on": deps})
    return {"tasks": tasks}


def _assert_sound(dag: Dag) -> None:
    layer_of = {task: n for n, layer in enumerate(dag.layers) for task in layer}
    assert sorted(layer_of) == sorted(t.id for t in dag.tasks)
    assert sum(len(layer) for layer in dag.layers) == len(dag.tasks)
    for task in dag.tasks:
        assert all(layer_of[dep] < layer_of[task.id] for dep in task.depends_on)
        assert layer_of[task.id] == max((layer_of[dep] + 1 for dep in task.depends_on), default=0)
    assert parse_dag(to_document(dag), tool_schemas=TOOLS) == dag


def _check(document: Any) -> None:
    try:
        dag = parse_dag(document, tool_schemas=TOOLS)
    except DagValidationError as exc:
        assert exc.problems
        assert str(exc).strip()
        assert all(p.message.strip() and p.field for p in exc.problems)
    else:
        _assert_sound(dag)


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(json_values)
def test_any_json_value_is_refused_clearly_or_parsed_soundly(document: Any) -> None:
    _check(document)


@FAST
@given(near_valid_documents())
def test_a_corrupted_dag_document_is_refused_clearly_or_parsed_soundly(document: Any) -> None:
    _check(document)


@settings(max_examples=150, deadline=None)
@given(valid_documents())
def test_an_acyclic_dag_of_known_tools_always_parses_into_sound_layers(document: dict[str, Any]) -> None:
    _assert_sound(parse_dag(document, tool_schemas=TOOLS))
