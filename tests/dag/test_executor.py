"""The executor runs DAGs layer by layer against a real downstream server (examples/faulty_server.py)."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest

from gateway.config import ServerSpec
from gateway.dag import Dag, Task, parse_dag
from gateway.dag.executor import Executor
from gateway.dag.state import RunStatus, TaskStatus, WorkflowState
from gateway.downstream import Supervisor
from gateway.errors import DatabaseError
from gateway.models import EpisodicEvent, ToolDef, ToolOutput

pytestmark = pytest.mark.anyio

FAULTY_SERVER = Path(__file__).resolve().parents[2] / "examples" / "faulty_server.py"
SETTLE_S = 30.0
WAIT_S = 10.0


def spec(name: str = "faulty") -> ServerSpec:
    return ServerSpec(name=name, command=sys.executable, args=(str(FAULTY_SERVER),))


class Downstream:
    """The supervisor as the executor's `call`: each result reduced to a `ToolOutput`, each call noted as it
    starts and ends so that tests can wait for one (bounded) instead of sleeping."""

    def __init__(self, supervisor: Supervisor) -> None:
        self.supervisor = supervisor
        self.started: list[tuple[str, dict[str, Any]]] = []
        self.ended: list[str] = []
        self._news = anyio.Event()

    async def __call__(self, tool_id: str, arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
        self._note(self.started.append, (tool_id, arguments))
        server, _, tool = tool_id.partition(":")
        try:
            result = await self.supervisor.call_tool(server, tool, arguments, timeout_s=timeout_s)
        finally:
            self._note(self.ended.append, tool_id)
        return as_output(result)

    @property
    def tools_called(self) -> list[str]:
        return [tool for tool, _ in self.started]

    def schemas(self, server: str = "faulty") -> dict[str, Any]:
        return {t.tool_id: t.input_schema for t in self.supervisor.tools(server)}

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        with anyio.fail_after(WAIT_S):
            while not condition():
                await self._news.wait()

    def _note(self, add: Callable[[Any], None], item: Any) -> None:
        add(item)
        self._news.set()
        self._news = anyio.Event()


def as_output(result: types.CallToolResult) -> ToolOutput:
    text = "\n".join(block.text for block in result.content if isinstance(block, types.TextContent))
    return ToolOutput(is_error=result.is_error, text=text, structured=result.structured_content)


@asynccontextmanager
async def downstream(*specs: ServerSpec) -> AsyncIterator[Downstream]:
    async def listed(server: str, tools: Sequence[ToolDef]) -> None:
        pass

    supervisor = Supervisor(servers=specs or (spec(),), on_tools=listed, restart_base_s=0.05, restart_cap_s=0.1)
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        await supervisor.wait_settled(SETTLE_S)
        yield Downstream(supervisor)
        tg.cancel_scope.cancel()


@pytest.fixture
async def faulty() -> AsyncIterator[Downstream]:
    async with downstream() as calls:
        yield calls


class Checkpoints(list[WorkflowState]):
    """The checkpoint sink: keeps every state it is given, in order."""

    async def __call__(self, state: WorkflowState) -> None:
        self.append(state)

    def layers(self) -> list[tuple[int, RunStatus]]:
        return [(s.next_layer, s.status) for s in self]


def task(task_id: str, tool: str, *depends_on: str, **arguments: Any) -> dict[str, Any]:
    return {"id": task_id, "tool": f"faulty:{tool}", "arguments": arguments, "depends_on": list(depends_on)}


def workflow(calls: Downstream, *tasks: dict[str, Any], **options: Any) -> WorkflowState:
    dag: Dag = parse_dag({"tasks": list(tasks), "options": options}, tool_schemas=calls.schemas())
    return WorkflowState(workflow_id="wf_test", dag=dag)


def statuses(state: WorkflowState) -> dict[str, str]:
    return {task_id: result.status.value for task_id, result in state.results.items()}


async def test_a_diamond_passes_outputs_by_reference_to_the_final_value(faulty: Downstream) -> None:
    state = workflow(
        faulty,
        task("a", "echo", text="x"),
        task("b", "echo", text="$OUTPUT[a].result+b"),
        task("c", "echo", text="$OUTPUT[a].result+c"),
        task("d", "echo", text="$OUTPUT[b].result & $OUTPUT[c].result"),
    )

    done = await Executor(call=faulty, checkpoint=Checkpoints()).advance(state)

    assert done.status is RunStatus.COMPLETED
    assert done.results["d"].output == {"result": "x+b & x+c"}
    assert {r.id: r.layer for r in done.results.values()} == {"a": 0, "b": 1, "c": 1, "d": 2}
    assert done.next_layer == 3 and done.done


async def test_each_task_s_end_is_reported_as_progress_and_a_failing_report_stops_nothing(
    faulty: Downstream,
) -> None:
    reports: list[tuple[float, float | None, str | None]] = []

    async def progress(done: float, total: float | None, message: str | None) -> None:
        reports.append((done, total, message))

    async def broken(done: float, total: float | None, message: str | None) -> None:
        raise BrokenPipeError("the client went away")

    tasks = (task("a", "echo", text="x"), task("b", "add", "a", a="$OUTPUT[a].result", b=1),
             task("c", "echo", "b", text="never"), task("d", "echo", "a", text="y"))
    done = await Executor(call=faulty, checkpoint=Checkpoints()).advance(workflow(faulty, *tasks), progress=progress)
    assert statuses(done) == {"a": "ok", "b": "error", "c": "skipped", "d": "ok"}
    assert reports[0] == (1, 4, "task a (faulty:echo): ok")
    assert [(n, total) for n, total, _ in reports[1:]] == [(2, 4), (3, 4)]  # b and d end in either order
    assert {m for _, _, m in reports[1:]} == {"task b (faulty:add): error", "task d (faulty:echo): ok"}
    assert len(reports) == 3  # c never ran: it is skipped without a report of its own

    again = await Executor(call=faulty, checkpoint=Checkpoints()).advance(workflow(faulty, *tasks), progress=broken)
    assert statuses(again) == statuses(done)


async def test_five_sleeps_in_one_layer_run_at_once(faulty: Downstream) -> None:
    state = workflow(faulty, *(task(f"s{i}", "sleep", ms=200) for i in range(5)))

    done = await Executor(call=faulty, checkpoint=Checkpoints()).advance(state)

    assert done.status is RunStatus.COMPLETED
    assert done.wall_ms < 800  # one after the other they would take 1000 ms
    assert 1000 <= done.sum_task_ms < 1600


async def test_a_failing_branch_skips_its_dependents_while_the_other_branch_completes(faulty: Downstream) -> None:
    state = workflow(
        faulty,
        task("word", "echo", text="not a number"),
        task("bad", "add", "word", a="$OUTPUT[word].result", b=1),
        task("after_bad", "echo", "bad", text="never"),
        task("good", "add", a=1, b=2),
        task("after_good", "add", "good", a="$OUTPUT[good].result", b=10),
    )

    done = await Executor(call=faulty, checkpoint=Checkpoints()).advance(state)

    assert done.status is RunStatus.FAILED
    assert statuses(done) == {"word": "ok", "bad": "error", "after_bad": "skipped", "good": "ok", "after_good": "ok"}
    assert "valid number" in (done.results["bad"].error or "")
    assert done.results["after_bad"].error == "skipped: dependency 'bad' failed"
    assert done.results["after_good"].output == {"result": 13}
    assert {"text": "never"} not in [arguments for _, arguments in faulty.started]


async def test_a_crashed_server_fails_its_task_while_another_server_completes_its_branch() -> None:
    async with downstream(spec("faulty"), spec("fragile")) as calls:
        document = {
            "tasks": [
                {"id": "boom", "tool": "fragile:crash"},
                {"id": "after", "tool": "fragile:echo", "arguments": {"text": "x"}, "depends_on": ["boom"]},
                {"id": "fine", "tool": "faulty:echo", "arguments": {"text": "ok"}},
            ]
        }
        schemas = calls.schemas("faulty") | calls.schemas("fragile")
        state = WorkflowState(workflow_id="wf_crash", dag=parse_dag(document, tool_schemas=schemas))

        done = await Executor(call=calls, checkpoint=Checkpoints()).advance(state)

    assert statuses(done) == {"boom": "error", "after": "skipped", "fine": "ok"}
    assert "exited during the call" in (done.results["boom"].error or "")
    assert done.status is RunStatus.FAILED


async def test_a_hanging_task_times_out_and_its_dependent_is_skipped(faulty: Downstream) -> None:
    state = workflow(faulty, task("stuck", "hang"), task("after", "echo", "stuck", text="x"), timeout_ms=500)

    with anyio.fail_after(WAIT_S):
        done = await Executor(call=faulty, checkpoint=Checkpoints()).advance(state)

    assert statuses(done) == {"stuck": "timeout", "after": "skipped"}
    assert done.results["after"].error == "skipped: dependency 'stuck' timed out"
    assert 450 <= done.results["stuck"].duration_ms < 2000


async def test_a_bad_reference_path_fails_that_task_naming_the_path(faulty: Downstream) -> None:
    state = workflow(faulty, task("a", "echo", text="x"), task("b", "echo", text="$OUTPUT[a].nokey"))

    done = await Executor(call=faulty, checkpoint=Checkpoints()).advance(state)

    assert statuses(done) == {"a": "ok", "b": "error"}
    assert "$OUTPUT[a].nokey" in (done.results["b"].error or "")
    assert faulty.tools_called == ["faulty:echo"]


async def test_resolved_arguments_that_miss_the_schema_fail_the_task_before_any_call(faulty: Downstream) -> None:
    state = workflow(faulty, task("word", "echo", text="abc"), task("sum", "add", a="$OUTPUT[word].result", b=1))
    executor = Executor(call=faulty, checkpoint=Checkpoints(), schema_of=faulty.schemas().get)

    done = await executor.advance(state)

    assert done.results["sum"].status is TaskStatus.ERROR
    assert "argument 'a'" in (done.results["sum"].error or "")
    assert faulty.tools_called == ["faulty:echo"]


async def test_a_bug_in_the_call_fails_only_its_task_and_is_logged(
    faulty: Downstream, caplog: pytest.LogCaptureFixture
) -> None:
    async def buggy(tool_id: str, arguments: dict[str, Any], timeout_s: float) -> ToolOutput:
        if arguments.get("text") == "bug":
            raise RuntimeError("boom")
        return await faulty(tool_id, arguments, timeout_s)

    state = workflow(faulty, task("a", "echo", text="bug"), task("b", "echo", text="fine"))

    with caplog.at_level(logging.ERROR, logger="gateway.dag"):
        done = await Executor(call=buggy, checkpoint=Checkpoints()).advance(state)

    assert statuses(done) == {"a": "error", "b": "ok"}
    assert done.results["a"].error == "internal error: RuntimeError: boom"
    assert any(record.exc_info for record in caplog.records)


def _needs_count(task: Task) -> bool:
    return task.tool == "faulty:count_calls"


async def test_a_layer_waits_for_approval_and_runs_once_approved(faulty: Downstream) -> None:
    state = workflow(faulty, task("a", "echo", text="x"), task("b", "count_calls", "a"))
    checkpoints = Checkpoints()
    executor = Executor(call=faulty, checkpoint=checkpoints, needs_approval=_needs_count)

    paused = await executor.advance(state)
    done = await executor.advance(paused, approved=True)

    assert paused.status is RunStatus.APPROVAL_REQUIRED and paused.pending_approval == ("b",)
    assert statuses(paused) == {"a": "ok"} and paused.next_layer == 1
    assert checkpoints[-2] == paused
    assert done.status is RunStatus.COMPLETED and done.results["b"].output == {"result": 2}
    assert done.approved_layers == {1} and done.pending_approval == ()


async def test_a_rejected_approval_skips_those_tasks_and_their_dependents_but_runs_the_rest(
    faulty: Downstream,
) -> None:
    state = workflow(
        faulty,
        task("a", "echo", text="x"),
        task("risky", "count_calls", "a"),
        task("safe", "echo", "a", text="y"),
        task("after", "echo", "risky", text="z"),
    )
    executor = Executor(call=faulty, checkpoint=Checkpoints(), needs_approval=_needs_count)

    paused = await executor.advance(state)
    done = await executor.advance(paused, approved=False)

    assert paused.pending_approval == ("risky",)
    assert statuses(done) == {"a": "ok", "risky": "skipped", "safe": "ok", "after": "skipped"}
    assert done.results["risky"].error == "not approved"
    assert done.results["after"].error == "skipped: dependency 'risky' was skipped"
    assert done.status is RunStatus.FAILED
    assert "faulty:count_calls" not in faulty.tools_called


async def test_per_layer_validation_pauses_and_the_next_advance_does_not_rerun_the_first_layer(
    faulty: Downstream,
) -> None:
    state = workflow(faulty, task("a", "count_calls"), task("b", "count_calls", "a"), per_layer_validation=True)
    executor = Executor(call=faulty, checkpoint=Checkpoints())

    paused = await executor.advance(state)
    done = await executor.advance(paused)

    assert paused.status is RunStatus.LAYER_COMPLETE and paused.next_layer == 1
    assert done.status is RunStatus.COMPLETED
    assert done.results["a"].output == {"result": 1} and done.results["b"].output == {"result": 2}
    assert done.wall_ms > paused.wall_ms


async def test_a_run_cut_off_mid_layer_continues_from_its_checkpoint_without_rerunning_layer_0(
    faulty: Downstream,
) -> None:
    state = workflow(
        faulty, task("a", "count_calls"), task("slow", "sleep", "a", ms=300), task("c", "echo", "slow", text="end")
    )
    checkpoints = Checkpoints()
    async with anyio.create_task_group() as tg:
        tg.start_soon(Executor(call=faulty, checkpoint=checkpoints).advance, state)
        await faulty.wait_for(lambda: "faulty:sleep" in faulty.tools_called)
        tg.cancel_scope.cancel()
    restored = WorkflowState.from_json(json.loads(json.dumps(checkpoints[-1].to_json())))
    later = Downstream(faulty.supervisor)

    done = await Executor(call=later, checkpoint=Checkpoints()).advance(restored)

    assert checkpoints.layers() == [(1, RunStatus.RUNNING)]
    assert restored.results["a"].output == {"result": 1}
    assert done.status is RunStatus.COMPLETED and done.results["a"].output == {"result": 1}
    assert later.tools_called == ["faulty:sleep", "faulty:echo"]


async def test_abort_cancels_a_long_sleep_promptly(faulty: Downstream) -> None:
    state = workflow(
        faulty,
        task("long", "sleep", ms=20_000),
        task("quick", "echo", text="x"),
        task("after", "echo", "long", text="y"),
    )
    checkpoints = Checkpoints()
    executor = Executor(call=faulty, checkpoint=checkpoints)
    outcome: list[WorkflowState] = []

    async def run() -> None:
        outcome.append(await executor.advance(state))

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        await faulty.wait_for(lambda: "faulty:sleep" in faulty.tools_called and "faulty:echo" in faulty.ended)
        began = anyio.current_time()
        assert await executor.abort("wf_test")
        assert anyio.current_time() - began < 2.0

    (aborted,) = outcome
    assert aborted.status is RunStatus.ABORTED
    assert statuses(aborted) == {"long": "cancelled", "quick": "ok", "after": "skipped"}
    assert aborted.results["after"].error == "aborted"
    assert checkpoints[-1] == aborted
    assert not await executor.abort("wf_test")


async def test_checkpoints_are_saved_once_per_finished_layer_in_order(faulty: Downstream) -> None:
    state = workflow(
        faulty, task("a", "echo", text="1"), task("b", "echo", "a", text="2"), task("c", "echo", "b", text="3")
    )
    checkpoints = Checkpoints()
    executor = Executor(call=faulty, checkpoint=checkpoints)

    done = await executor.advance(state)

    assert checkpoints.layers() == [(1, RunStatus.RUNNING), (2, RunStatus.RUNNING), (3, RunStatus.COMPLETED)]
    assert checkpoints[-1] == done
    assert len(executor.checkpoint_ms) == 3


async def test_a_slow_checkpoint_does_not_hold_up_the_next_layer(faulty: Downstream) -> None:
    checkpoints = Checkpoints()

    async def slow(state: WorkflowState) -> None:
        if state.next_layer == 1:  # the first save finishes only once layer 1 has called downstream
            await faulty.wait_for(lambda: len(faulty.started) >= 2)
        await checkpoints(state)

    state = workflow(faulty, task("a", "echo", text="1"), task("b", "echo", "a", text="2"))

    with anyio.fail_after(WAIT_S):
        done = await Executor(call=faulty, checkpoint=slow).advance(state)

    assert done.status is RunStatus.COMPLETED
    assert checkpoints.layers() == [(1, RunStatus.RUNNING), (2, RunStatus.COMPLETED)]


async def test_a_failing_checkpoint_is_logged_and_the_run_goes_on(
    faulty: Downstream, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(state: WorkflowState) -> None:
        raise DatabaseError("database is down")

    state = workflow(faulty, task("a", "echo", text="1"), task("b", "echo", "a", text="2"))
    executor = Executor(call=faulty, checkpoint=broken)

    done = await executor.advance(state)

    assert done.status is RunStatus.COMPLETED
    assert [r.message for r in caplog.records].count("checkpoint of workflow wf_test at layer 1 failed") == 1
    assert executor.checkpoint_ms == []


async def test_events_tell_the_story_of_a_run_in_one_batch_per_layer_or_pause(faulty: Downstream) -> None:
    batches: list[list[EpisodicEvent]] = []

    async def record(events: Sequence[EpisodicEvent]) -> None:
        batches.append(list(events))

    state = workflow(faulty, task("a", "echo", text="x"), task("b", "count_calls", "a"))
    executor = Executor(call=faulty, checkpoint=Checkpoints(), events=record, needs_approval=_needs_count)

    done = await executor.advance(await executor.advance(state), approved=True)

    told = [[(e.event_type, e.task_id or e.data.get("kind")) for e in batch] for batch in batches]
    assert told == [
        [("workflow_start", None), ("task_complete", "a")],
        [("decision", "approval_required")],
        [("decision", "approved"), ("task_complete", "b"), ("workflow_complete", None)],
    ]
    complete = batches[-1][-1].data
    assert complete == {
        "status": "completed",
        "wall_ms": round(done.wall_ms, 3),
        "sum_task_ms": round(done.sum_task_ms, 3),
    }
    assert batches[0][1].data["status"] == "ok" and batches[0][1].data["duration_ms"] > 0
