"""The calls of workflows: a known tool on its server (timed), approvals by annotation or by the config, and the
schema a task is checked against; a name that is neither a tool nor a capability answers an error."""

from __future__ import annotations

import pytest

from gateway.catalog import ToolCatalog
from gateway.dag import Task
from gateway.db import CapabilityStore
from gateway.db.pool import Pool
from gateway.models import ToolDef
from gateway.runtime.calls import DagCalls
from gateway.services.telemetry import CALL_LATENCY, Telemetry
from tests.downstream.support import SETTLE_S, faulty, supervising

pytestmark = pytest.mark.anyio


def known(catalog: ToolCatalog, server: str, tools: list[ToolDef]) -> ToolCatalog:
    catalog.listed(server, tools)
    return catalog


async def test_a_known_tool_runs_on_its_server_and_a_destructive_or_listed_one_needs_approval(pool: Pool) -> None:
    echo = ToolDef(server="faulty", name="echo", description="", input_schema={"type": "object", "required": ["text"]})
    crash = ToolDef(server="faulty", name="crash", description="", input_schema={"type": "object"},
                    annotations={"destructiveHint": True})
    add = ToolDef(server="faulty", name="add", description="", input_schema={"type": "object"})
    catalog = known(ToolCatalog(servers=["faulty"]), "faulty", [echo, crash, add])
    telemetry = Telemetry()
    async with supervising(faulty()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        calls = DagCalls(supervisor=supervisor, catalog=catalog, telemetry=telemetry,
                         approval=frozenset({"faulty:add"}), capabilities=CapabilityStore(pool))
        output = await calls.call("faulty:echo", {"text": "hi"}, 5.0)
        unknown = await calls.call("nope:nothing", {}, 5.0)
    assert not output.is_error and output.text == "hi"
    assert unknown.is_error and "nope:nothing" in unknown.text
    assert [calls.needs_approval(Task(id="t", tool=t)) for t in ("faulty:echo", "faulty:crash", "faulty:add")] == [
        False, True, True]
    assert calls.schema_of("faulty:echo") == {"type": "object", "required": ["text"]}
    assert calls.schema_of("nope:nothing") is None
    assert 'pml_tool_call_latency_ms_count{outcome="ok",tool="faulty:echo"} 1' in telemetry.prometheus()
    assert CALL_LATENCY == "pml_tool_call_latency_ms"
