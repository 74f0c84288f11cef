"""A code run's trace read as a workflow: data-flow dependencies from values, layers from overlap in time."""

from __future__ import annotations

from typing import Any

from gateway.dag.state import TaskStatus
from gateway.dag.trace import Invocation, as_dag, distinctive, results


def inv(seq: int, tool: str, arguments: dict[str, Any], start: float, ms: float, output: Any = None,
        ok: bool = True) -> Invocation:
    return Invocation(seq=seq, tool=tool, arguments=arguments, started_ms=start, duration_ms=ms, ok=ok,
                      output=output, error=None if ok else "boom")


def test_a_call_whose_argument_came_out_of_an_earlier_output_depends_on_it() -> None:
    trace = [
        inv(1, "git:log", {"repo": "."}, 0, 10, output="abc123 fix the parser\ndef456 add tests"),
        inv(2, "git:show", {"sha": "abc123"}, 12, 5, output={"diff": "..."}),
    ]
    dag = as_dag(trace, "show the fix")
    assert dag.task("call2").depends_on == ("call1",)
    assert dag.layers == (("call1",), ("call2",)) and dag.intent == "show the fix"


def test_short_values_and_values_not_in_any_output_make_no_dependency() -> None:
    trace = [
        inv(1, "a:list", {"path": "."}, 0, 10, output="1 2 . x"),
        inv(2, "a:read", {"path": ".", "n": 10}, 11, 5),
        inv(3, "a:read", {"path": "elsewhere"}, 17, 5),
    ]
    dag = as_dag(trace, None)
    assert [t.depends_on for t in dag.tasks] == [(), (), ()]
    assert dag.layers == (("call1",), ("call2",), ("call3",))  # one after the other: a sequence


def test_calls_that_overlapped_share_a_layer_unless_one_feeds_the_other() -> None:
    trace = [
        inv(1, "a:x", {"q": "one"}, 0, 100, output="result-one"),
        inv(2, "a:y", {"q": "two"}, 1, 100, output="result-two"),
        inv(3, "a:z", {"q": "result-one"}, 101, 5),
        inv(4, "a:w", {"q": "four"}, 102, 5),
    ]
    dag = as_dag(trace, None)
    assert dag.task("call3").depends_on == ("call1",)
    assert dag.layers == (("call1", "call2"), ("call3", "call4"))


def test_a_failed_call_feeds_nothing_and_keeps_its_status_in_the_results() -> None:
    trace = [inv(1, "a:x", {"q": "one"}, 0, 5, output=None, ok=False), inv(2, "a:y", {"q": "boom"}, 6, 5)]
    dag = as_dag(trace, None)
    done = results(trace, dag)
    assert dag.task("call2").depends_on == ()
    assert done["call1"].status is TaskStatus.ERROR and done["call2"].status is TaskStatus.OK
    assert done["call2"].layer == 1


def test_distinctive_values_are_read_from_nested_arguments() -> None:
    assert distinctive({"a": ["xyz", "no"], "b": {"c": 1234, "d": True, "e": 7}}) == {"xyz", "1234"}
