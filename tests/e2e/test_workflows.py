"""execute_dag and workflow end to end: real servers, the real gateway over stdio, the SDK's client."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from mcp import Client

from tests.e2e.support import gateway_client, gateway_processes, text_of
from tests.e2e.test_gateway import indexed  # noqa: F401 - the fixture
from tests.eventually import eventually

pytestmark = pytest.mark.anyio


async def run_dag(client: Client, tasks: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    result = await client.call_tool("execute_dag", {"tasks": tasks, **extra})
    payload: dict[str, Any] = result.structured_content or {"error": text_of(result)}
    return payload


def echo(task_id: str, text: str, *deps: str) -> dict[str, Any]:
    return {"id": task_id, "tool": "faulty:echo", "arguments": {"text": text}, "depends_on": list(deps)}


def sleep(task_id: str, ms: int, *deps: str) -> dict[str, Any]:
    return {"id": task_id, "tool": "faulty:sleep", "arguments": {"ms": ms}, "depends_on": list(deps)}


async def test_a_diamond_passes_outputs_by_reference(indexed: Path, database_url: str) -> None:  # noqa: F811
    tasks = [
        echo("a", "alpha"),
        echo("b", "$OUTPUT[a].result-b"),
        echo("c", "$OUTPUT[a].result-c"),
        echo("d", "$OUTPUT[b].result+$OUTPUT[c].result"),
    ]
    async with gateway_client(indexed, "--database-url", database_url) as client:
        payload = await run_dag(client, tasks)
    assert payload["status"] == "completed", payload
    assert payload["layers"] == 3
    assert payload["tasks"]["d"]["output"] == {"result": "alpha-b+alpha-c"}
    assert [payload["tasks"][t]["layer"] for t in "abcd"] == [0, 1, 1, 2]


async def test_a_wide_layer_really_runs_in_parallel(indexed: Path, database_url: str) -> None:  # noqa: F811
    async with gateway_client(indexed, "--database-url", database_url) as client:
        await client.call_tool("faulty__echo", {"text": "warm up"})  # the server's start is not the DAG's time
        payload = await run_dag(client, [sleep(f"s{i}", 200) for i in range(5)])
    assert payload["status"] == "completed"
    assert payload["sum_task_ms"] >= 1000
    assert payload["wall_ms"] < 800, payload  # five 200 ms sleeps one after the other would take 1 s
    assert payload["speedup"] > 1.25


async def test_every_validation_error_is_named_before_anything_runs(indexed: Path, database_url: str) -> None:  # noqa: F811
    tasks = [
        echo("a", "x"),
        echo("a", "duplicate"),
        {"id": "bad id!", "tool": "faulty:echo", "arguments": {"text": "x"}},
        {"id": "u", "tool": "faulty:ecko", "arguments": {}},
        echo("m", "x", "missing"),
        echo("c1", "x", "c2"),
        echo("c2", "x", "c1"),
        {"id": "s", "tool": "faulty:sleep", "arguments": {"ms": "long"}},
        echo("r", "$OUTPUT[nowhere]"),
    ]
    async with gateway_client(indexed, "--database-url", database_url) as client:
        result = await client.call_tool("execute_dag", {"tasks": tasks})
        count = await client.call_tool("faulty__count_calls", {})
    text = text_of(result)
    assert result.is_error
    for fragment in ("duplicate", "bad id!", "faulty:ecko", "faulty:echo", "missing", "c1 -> c2 -> c1",
                     "task 's'", "ms", "nowhere"):
        assert fragment in text, (fragment, text)
    assert text_of(count) == "1"  # nothing ran but this call


async def test_a_failing_branch_skips_its_dependents_while_the_other_completes(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    tasks = [
        {"id": "bad", "tool": "time:get_current_time", "arguments": {"timezone": "Mars/Olympus"}},
        echo("after_bad", "never", "bad"),
        echo("good", "fine"),
        echo("good2", "$OUTPUT[good].result too", "good"),
    ]
    async with gateway_client(indexed, "--database-url", database_url) as client:
        payload = await run_dag(client, tasks)
    statuses = {k: v["status"] for k, v in payload["tasks"].items()}
    assert payload["status"] == "failed"
    assert statuses == {"bad": "error", "after_bad": "skipped", "good": "ok", "good2": "ok"}
    assert "Mars/Olympus" in payload["tasks"]["bad"]["error"]
    assert payload["tasks"]["good2"]["output"] == {"result": "fine too"}


async def test_a_failed_task_marks_its_dependents_skipped_with_the_reason(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    tasks = [
        {"id": "bad", "tool": "faulty:echo", "arguments": {"text": "$OUTPUT[a].nokey"}},
        echo("a", "x"),
        echo("child", "$OUTPUT[bad].result", "bad"),
        echo("other", "independent"),
    ]
    async with gateway_client(indexed, "--database-url", database_url) as client:
        payload = await run_dag(client, tasks)
    tasks_out = payload["tasks"]
    assert payload["status"] == "failed"
    assert tasks_out["bad"]["status"] == "error" and "nokey" in tasks_out["bad"]["error"]
    assert tasks_out["child"]["status"] == "skipped" and "bad" in tasks_out["child"]["error"]
    assert tasks_out["other"]["status"] == "ok"


async def test_a_hanging_task_times_out_and_its_dependent_is_skipped(indexed: Path, database_url: str) -> None:  # noqa: F811
    tasks = [{"id": "h", "tool": "faulty:hang", "arguments": {}}, echo("after", "x", "h"), echo("free", "y")]
    async with gateway_client(indexed, "--database-url", database_url) as client:
        with anyio.fail_after(15):
            payload = await run_dag(client, tasks, options={"timeout_ms": 500})
    assert payload["tasks"]["h"]["status"] == "timeout"
    assert payload["tasks"]["after"]["status"] == "skipped"
    assert payload["tasks"]["free"]["status"] == "ok"


async def test_a_destructive_step_waits_for_approval_then_continues_or_aborts(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    write = {"id": "w", "tool": "notes:write_note", "arguments": {"title": "t", "text": "x"}}
    delete = {"id": "d", "tool": "notes:delete_note", "arguments": {"title": "t"}, "depends_on": ["w"]}
    async with gateway_client(indexed, "--database-url", database_url) as client:
        paused = await run_dag(client, [write, delete])
        missing = await client.call_tool("workflow", {"workflow_id": paused["workflow_id"], "action": "continue"})
        done = (await client.call_tool("workflow", {"workflow_id": paused["workflow_id"], "action": "continue",
                                                    "approved": True})).structured_content
        paused2 = await run_dag(client, [write, delete])
        aborted = (await client.call_tool("workflow", {"workflow_id": paused2["workflow_id"],
                                                       "action": "abort"})).structured_content
        notes = await client.call_tool("notes__list_notes", {})
    assert paused["status"] == "approval_required" and paused["pending_approval"] == ["d"]
    assert paused["tasks"]["w"]["status"] == "ok" and "d" not in paused["tasks"]
    assert missing.is_error and "approved" in text_of(missing)
    assert done["status"] == "completed" and done["tasks"]["d"]["status"] == "ok"
    assert aborted["status"] == "aborted" and aborted["tasks"]["d"]["status"] == "skipped"
    assert "t" in text_of(notes)  # the aborted delete never ran


async def test_a_workflow_survives_a_sigkill_and_continues_without_rerunning_its_first_layer(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    tasks = [echo("a", "first"), {"id": "b", "tool": "faulty:count_calls", "arguments": {}, "depends_on": ["a"]}]
    async with gateway_client(indexed, "--database-url", database_url) as client:
        paused = await run_dag(client, tasks, options={"per_layer_validation": True})
        (gateway,) = gateway_processes(indexed)
        gateway.send_signal(signal.SIGKILL)
        gateway.wait(timeout=10)
    assert paused["status"] == "layer_complete"
    async with gateway_client(indexed, "--database-url", database_url) as client:
        result = await client.call_tool("workflow", {"workflow_id": paused["workflow_id"], "action": "continue"})
    payload = result.structured_content
    assert payload["status"] == "completed", text_of(result)
    assert payload["tasks"]["a"]["output"] == {"result": "first"}
    assert payload["tasks"]["b"]["output"] == {"result": 1}  # the new faulty process saw only b: a was not re-run


async def test_a_workflow_cut_off_mid_run_is_continued_after_a_restart(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    tasks = [echo("a", "first"), sleep("slow", 1500, "a"),
             {"id": "c", "tool": "faulty:count_calls", "arguments": {}, "depends_on": ["slow"]}]
    async with gateway_client(indexed, "--database-url", database_url) as client, anyio.create_task_group() as tg:
        tg.start_soon(client.call_tool, "execute_dag", {"tasks": tasks})
        workflow_id = await _first_checkpoint(database_url)
        (gateway,) = gateway_processes(indexed)
        gateway.send_signal(signal.SIGKILL)
        tg.cancel_scope.cancel()
    async with gateway_client(indexed, "--database-url", database_url) as client:

        async def completed() -> dict[str, Any] | None:
            result = await client.call_tool("workflow", {"workflow_id": workflow_id, "action": "status"})
            return result.structured_content if result.structured_content["status"] == "completed" else None

        payload = await eventually(completed, timeout_s=30, interval_s=0.1, what=f"{workflow_id} completed")
    assert payload["tasks"]["c"]["output"] == {"result": 2}  # slow and c ran in the new process, a did not


async def _first_checkpoint(database_url: str) -> str:
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:

        async def checkpointed() -> str | None:
            row = await (await conn.execute("SELECT workflow_id FROM workflow_checkpoint LIMIT 1")).fetchone()
            return None if row is None else str(row[0])

        workflow_id: str = await eventually(checkpointed, timeout_s=20, interval_s=0.02, what="a workflow checkpoint")
        return workflow_id


async def test_twenty_concurrent_workflows_all_complete_and_are_recorded(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    outcomes: list[dict[str, Any]] = []

    async def one(i: int) -> None:
        outcomes.append(await run_dag(client, [echo("a", f"w{i}"), echo("b", "$OUTPUT[a].result!", "a")]))

    async with gateway_client(indexed, "--database-url", database_url) as client:
        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(one, i)
    assert sorted(o["tasks"]["b"]["output"]["result"] for o in outcomes) == sorted(f"w{i}!" for i in range(20))
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        query = "SELECT count(*), count(*) FILTER (WHERE success) FROM workflow_execution"
        row = await (await conn.execute(query)).fetchone()
    assert row == (20, 20)


async def test_a_one_task_dag_answers_plainly(indexed: Path, database_url: str) -> None:  # noqa: F811
    async with gateway_client(indexed, "--database-url", database_url) as client:
        result = await client.call_tool("execute_dag", {"tasks": [
            {"id": "t", "tool": "time:get_current_time", "arguments": {"timezone": "Asia/Tokyo"}}]})
    assert not result.is_error
    assert json.loads(text_of(result))["timezone"] == "Asia/Tokyo"


async def test_a_paused_workflow_is_replanned_then_continued(indexed: Path, database_url: str) -> None:  # noqa: F811
    async with gateway_client(indexed, "--database-url", database_url) as client:
        paused = await run_dag(client, [echo("a", "first"), echo("b", "old", "a")],
                               options={"per_layer_validation": True})
        wid = paused["workflow_id"]
        refused = await client.call_tool("workflow", {"workflow_id": wid, "action": "replan",
                                                      "tasks": [echo("a", "again")]})
        replanned = await client.call_tool("workflow", {"workflow_id": wid, "action": "replan", "tasks": [
            echo("b", "new $OUTPUT[a].result", "a"), echo("c", "$OUTPUT[b].result+c", "b")]})
        middle = (await client.call_tool("workflow", {"workflow_id": wid, "action": "continue"})).structured_content
        done = (await client.call_tool("workflow", {"workflow_id": wid, "action": "continue"})).structured_content
    assert paused["status"] == "layer_complete"
    assert middle["status"] == "layer_complete" and middle["next_layer"] == 2  # still pausing after each layer
    assert refused.is_error and "'a'" in text_of(refused)
    assert not replanned.is_error, text_of(replanned)
    assert done["status"] == "completed", done
    assert done["tasks"]["b"]["output"] == {"result": "new first"}
    assert done["tasks"]["c"]["output"] == {"result": "new first+c"}
