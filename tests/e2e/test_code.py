"""Code mode end to end: `execute_code` through the real gateway over stdio, against real servers and Postgres.

The program calls tools, runs calls concurrently, is recorded with its trace, teaches the tool graph, becomes a
capability after two successful runs with other literals, and that capability runs from code, `call_tool` and a
DAG. Limits and refusals are named in the answer and the gateway keeps serving.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client

from tests.e2e.support import ROOT, gateway_client, servers_file, text_of
from tests.e2e.test_workflows import run_dag
from tests.eventually import eventually
from tests.faults.test_outage import rows

pytestmark = pytest.mark.anyio

FED = """
import asyncio
first = await call("faulty:echo", {"text": "12345"})
slept = await asyncio.gather(call("faulty:sleep", {"ms": 200}), call("faulty:sleep", {"ms": 200}))
total = await call("faulty:add", {"a": int(first), "b": 1})
{"total": total, "slept": len(slept)}
"""

PROGRAM = """
word = "{word}"
said = await call("faulty:echo", {{"text": word}})
again = await call("faulty:echo", {{"text": said + "!"}})
again.upper()
"""


async def run_code(client: Client, code: str, **extra: Any) -> tuple[bool, dict[str, Any], str]:
    result = await client.call_tool("execute_code", {"code": code, **extra})
    return bool(result.is_error), dict(result.structured_content or {}), text_of(result)


async def test_code_calls_tools_concurrently_returns_what_it_computes_and_is_recorded_with_its_trace(
    tmp_path: Path, database_url: str
) -> None:
    async with gateway_client(servers_file(tmp_path), "--database-url", database_url) as client:
        failed, payload, text = await run_code(client, FED, intent="add one to a number")
    assert not failed, text
    assert payload["result"] == {"total": 12346.0, "slept": 2} and payload["calls"] == 4
    ((code, code_hash, structure, success, intent),) = rows(
        database_url, "SELECT code_snippet, code_hash, dag_structure, success, intent_text FROM workflow_execution")
    assert code == FED and len(code_hash) == 64 and success and intent == "add one to a number"
    assert structure["type"] == "code_execution"
    assert structure["tools_used"] == ["faulty:add", "faulty:echo", "faulty:sleep"]
    calls = {c["seq"]: c for c in structure["tool_invocations"]}
    assert [calls[n]["layer"] for n in (1, 2, 3, 4)] == [0, 1, 1, 2]  # the two sleeps overlapped
    assert calls[4]["fed_by"] == ["call1"]  # add's 12345 came out of echo
    edges = await eventually(lambda: rows(database_url, "SELECT from_tool_id, to_tool_id, edge_type FROM "
                                          "tool_dependency WHERE edge_type = 'dependency'") or None,
                             timeout_s=30, interval_s=0.2, what="the edges learned from the run")
    assert ("faulty:echo", "faulty:add", "dependency") in edges


async def test_a_program_run_twice_with_other_literals_becomes_a_capability_run_from_code_call_tool_and_dags(
    tmp_path: Path, database_url: str
) -> None:
    async with gateway_client(servers_file(tmp_path), "--database-url", database_url) as client:
        for word in ("alpha", "beta"):
            failed, payload, text = await run_code(client, PROGRAM.format(word=word))
            assert not failed, text
        assert payload["result"] == "BETA!"

        async def listed() -> dict[str, Any] | None:
            found = (await client.call_tool("cap_list", {})).structured_content or {}
            return found if found.get("total") else None

        found = await eventually(listed, timeout_s=60, interval_s=0.2, what="the program's capability")
        (capability,) = found["capabilities"]
        name = capability["name"]
        assert capability["tools"] == ["faulty:echo"]
        assert capability["parameters_schema"]["properties"]["word"] == {"type": "string", "default": "beta"}
        from_code = await run_code(client, f'await call("{name}", {{"word": "gamma"}})')
        from_call = await client.call_tool("call_tool", {"tool": name, "arguments": {"word": "delta"}})
        from_dag = await run_dag(client, [{"id": "a", "tool": name, "arguments": {"word": "eps"}}])
        unknown = await client.call_tool("call_tool", {"tool": name, "arguments": {"wrd": "x"}})
    assert from_code[1]["result"] == "GAMMA!", from_code[2]
    assert "DELTA!" in text_of(from_call) and not from_call.is_error
    assert from_dag["status"] == "completed" and "EPS!" in str(from_dag), from_dag
    assert unknown.is_error and "wrd" in text_of(unknown) and "word" in text_of(unknown)
    ((pattern_code, pattern_hash),) = rows(database_url, "SELECT code_snippet, code_hash FROM workflow_pattern")
    assert "word = word" in pattern_code and '"alpha"' not in pattern_code and len(pattern_hash) == 64


SHOUT = """
import tools
said = await tools.faulty__echo(text="{word}")
said.upper() + "?"
"""


async def test_a_learned_program_is_found_by_its_intent_and_merges_with_another_of_the_same_tools(
    tmp_path: Path, database_url: str
) -> None:
    intent = "shout back the word I give you"
    async with gateway_client(servers_file(tmp_path), "--database-url", database_url) as client:
        for word in ("one", "two"):
            for program in (PROGRAM, SHOUT):
                failed, _, text = await run_code(client, program.format(word=word), intent=intent)
                assert not failed, text

        async def both() -> dict[str, Any] | None:
            found = (await client.call_tool("cap_list", {})).structured_content or {}
            return found if found.get("total") == 2 else None

        names = [c["name"] for c in (await eventually(both, timeout_s=60, interval_s=0.2,
                                                      what="both programs learned"))["capabilities"]]
        searched = (await client.call_tool("search_tools", {"query": intent})).structured_content or {}
        merged = await client.call_tool("cap_merge", {"source": names[0], "target": names[1]})
        after = (await client.call_tool("cap_list", {})).structured_content or {}
        still = await client.call_tool("call_tool", {"tool": names[1], "arguments": {}})
    offered = [r["tool_id"] for r in searched["results"] if r["kind"] == "capability"]
    assert set(offered) & set(names), searched["results"]
    assert not merged.is_error, text_of(merged)
    assert after["total"] == 1 and after["capabilities"][0]["usage_count"] == 4  # every successful run counted
    assert not still.is_error and text_of(still) in ("TWO!", "TWO?"), text_of(still)  # runs with its defaults


async def test_one_run_of_a_program_is_not_yet_a_capability(tmp_path: Path, database_url: str) -> None:
    async with gateway_client(servers_file(tmp_path), "--database-url", database_url) as client:
        failed, _, text = await run_code(client, PROGRAM.format(word="alone"))
        assert not failed, text
        await eventually(lambda: rows(database_url, "SELECT 1 FROM tool_usage") or None, timeout_s=30,
                         interval_s=0.2, what="the run learned")
        listed = (await client.call_tool("cap_list", {})).structured_content
    assert listed is not None and listed["total"] == 0


async def test_limits_and_refusals_are_named_and_the_gateway_keeps_serving(tmp_path: Path, database_url: str) -> None:
    config = servers_file(tmp_path, code={"maxToolCalls": 5, "timeoutMs": 3000})
    async with gateway_client(config, "--database-url", database_url) as client:
        loop = await run_code(client, "while True:\n    pass", timeout_ms=500)
        flood = await run_code(client, 'for i in range(50):\n    await call("faulty:echo", {"text": "x"})')
        caught_flood = await run_code(
            client, 'for i in range(50):\n    try:\n        await call("faulty:echo", {"text": "x"})\n'
                    '    except Exception:\n        pass\n"escaped"')
        bad = await run_code(client, 'await call("faulty:echo", {"txt": "x"})')
        tool_error = await run_code(
            client, 'try:\n    await call("faulty:nope", {})\nexcept RuntimeError as e:\n    r = str(e)\nr')
        hang = await run_code(client, 'await call("faulty:hang", {})', timeout_ms=800)
        escape = await run_code(client, "import os\nos.environ['PATH']")
        after = await run_code(client, 'await call("faulty:echo", {"text": "still here"})')
    assert loop[0] and loop[1]["error"]["limit"] == "timeout_ms" and "500 ms" in loop[2]
    assert flood[0] and flood[1]["error"]["limit"] == "max_tool_calls" and flood[1]["calls"] == 5
    assert caught_flood[0] and caught_flood[1]["error"]["limit"] == "max_tool_calls"  # catching does not escape
    assert bad[0] and bad[1]["error"]["kind"] == "ValueError" and "'text'" in bad[2]
    assert not tool_error[0] and "faulty:nope" in tool_error[1]["result"]
    assert hang[0] and hang[1]["error"]["limit"] == "timeout_ms"
    assert escape[0] and "not supported" in escape[2] and "/usr" not in escape[2]
    assert not after[0] and after[1]["result"] == "still here"


async def test_a_bad_execute_code_request_is_an_error_naming_the_field(tmp_path: Path, database_url: str) -> None:
    async with gateway_client(servers_file(tmp_path), "--database-url", database_url, settle=False) as client:
        empty = await client.call_tool("execute_code", {"code": ""})
        typed = await client.call_tool("execute_code", {"code": "1", "timeout_ms": "soon"})
        extra = await client.call_tool("execute_code", {"code": "1", "language": "js"})
    assert empty.is_error and "code" in text_of(empty)
    assert typed.is_error and "timeout_ms" in text_of(typed)
    assert extra.is_error and "language" in text_of(extra)


APPROVE = """
x = await call("faulty:echo", {"text": "5"})
y = await call("faulty:add", {"a": 1, "b": 2})
[x, y]
"""


async def test_a_call_that_needs_approval_pauses_the_run_until_the_client_decides(
    tmp_path: Path, database_url: str
) -> None:
    config = servers_file(tmp_path, approval=["faulty:add"])
    async with gateway_client(config, "--database-url", database_url) as client:
        paused = await run_code(client, APPROVE, timeout_ms=1500)
        run_id = paused[1]["run_id"]
        status = await client.call_tool("workflow", {"workflow_id": run_id, "action": "status"})
        await anyio.sleep(2.0)  # longer than the run's timeout_ms: waiting for a person is not the code's time
        approved = await client.call_tool("workflow", {"workflow_id": run_id, "action": "continue", "approved": True})
        refused_run = (await run_code(client, APPROVE))[1]["run_id"]
        refused = await client.call_tool("workflow", {"workflow_id": refused_run, "action": "continue",
                                                      "approved": False})
        aborted_run = (await run_code(client, APPROVE))[1]["run_id"]
        aborted = await client.call_tool("workflow", {"workflow_id": aborted_run, "action": "abort"})
        gone = await client.call_tool("workflow", {"workflow_id": run_id, "action": "continue", "approved": True})
    assert not paused[0] and paused[1]["status"] == "approval_required", paused[2]
    assert paused[1]["pending"] == {"tool": "faulty:add", "arguments": {"a": 1, "b": 2}} and paused[1]["calls"] == 1
    assert f'"workflow_id": "{run_id}"' in paused[2]
    assert (status.structured_content or {})["status"] == "approval_required"
    assert not approved.is_error and (approved.structured_content or {})["result"] == ["5", 3.0], text_of(approved)
    assert refused.is_error and (refused.structured_content or {})["error"]["kind"] == "PermissionError"
    assert aborted.is_error and (aborted.structured_content or {})["error"]["kind"] == "Aborted"
    assert gone.is_error and "workflow_id" in text_of(gone)


async def test_a_run_the_client_cancels_ends_its_tool_call_and_is_recorded_aborted(
    tmp_path: Path, database_url: str
) -> None:
    patient = {"command": sys.executable, "args": [str(ROOT / "examples/faulty_server.py")], "callTimeoutMs": 60_000}
    config = servers_file(tmp_path, extra={"faulty": patient})
    async with gateway_client(config, "--database-url", database_url) as client:
        with anyio.move_on_after(1.0):  # the client gives up: the SDK sends notifications/cancelled
            await client.call_tool("execute_code", {"code": 'await call("faulty:hang", {})'})

        async def count_cancelled() -> int:  # 0, falsy, until the cancellation has reached faulty
            return int(text_of(await client.call_tool("faulty__count_cancelled", {})))

        cancelled = await eventually(count_cancelled, timeout_s=20, interval_s=0.05, what="faulty's hang cancelled")
        recorded = await eventually(lambda: rows(database_url, "SELECT success, error_message FROM "
                                                 "workflow_execution WHERE code_snippet IS NOT NULL") or None,
                                    timeout_s=20, interval_s=0.1, what="the cancelled run recorded")
    assert cancelled == 1
    assert recorded == [(False, "the run was aborted")]


async def test_the_typed_tools_module_calls_tools_by_name_and_its_checker_names_a_wrong_argument(
    tmp_path: Path, database_url: str
) -> None:
    async with gateway_client(servers_file(tmp_path), "--database-url", database_url) as client:
        typed = await run_code(client, 'import tools\nawait tools.faulty__add(a=2, b=3)')
        aliased = await run_code(client, 'from tools import faulty__echo as echo\n(await echo(text="x")) * 2')
        wrong = await run_code(client, 'import tools\nawait tools.faulty__echo(txt="x")')
        unknown = await run_code(client, 'import tools\nawait tools.faulty__nope()')
        dynamic = await run_code(client, 'import tools\nargs = {"text": "y"}\nawait tools.faulty__echo(**args)')
    assert not typed[0] and typed[1]["result"] == 5.0 and "type_check" not in typed[1], typed[2]
    assert not aliased[0] and aliased[1]["result"] == "xx"
    assert wrong[0] and "missing-argument" in wrong[1]["type_check"] and "`text`" in wrong[1]["type_check"]
    assert unknown[0] and "has no member `faulty__nope`" in unknown[1]["type_check"]
    assert not dynamic[0] and dynamic[1]["result"] == "y"  # the checker's doubts never stop code that works
