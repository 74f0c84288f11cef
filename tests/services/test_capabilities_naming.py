"""A learned capability is named after what it does (its intent, else its tools), over the real store: a name
that stays unique, never changes once given, and that a user's rename cannot take."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import anyio
import numpy as np
import pytest
from numpy.typing import NDArray

from gateway.dag import parse_dag
from gateway.dag.state import RunStatus, TaskResult, TaskStatus, WorkflowState
from gateway.db import CapabilityStore, LearningStore
from gateway.errors import InvalidRequestError
from gateway.models import ToolDef
from gateway.services.capabilities import CapabilityService

pytestmark = pytest.mark.anyio

TIME_MEMORY_ECHO = [
    {"id": "now", "tool": "time:get_current_time", "arguments": {"timezone": "Asia/Tokyo"}},
    {"id": "keep", "tool": "memory:create_entities", "depends_on": ["now"],
     "arguments": {"entities": [{"name": "clock", "observations": ["$OUTPUT[now].datetime"]}]}},
    {"id": "say", "tool": "everything:echo", "depends_on": ["keep"], "arguments": {"message": "$OUTPUT[now].datetime"}},
]
KNOWN = {tool.tool_id: tool for tool in (ToolDef(server=server, name=name) for server, name in (
    ("time", "get_current_time"), ("memory", "create_entities"), ("everything", "echo"), ("time", "convert_time"),
    ("fs", "read_file"), ("fs", "write_file")))}


class _AxisEmbedder:
    """Every text on one axis: naming is under test here, not matching."""

    model_id = "axis"
    dimensions = 384

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        vectors[:, 0] = 1.0
        return vectors


@pytest.fixture
def service(capability_store: CapabilityStore, learning_store: LearningStore) -> CapabilityService:
    return CapabilityService(store=capability_store, edges=learning_store, embedder=_AxisEmbedder(),
                             limiter=anyio.CapacityLimiter(1))


def completed(tasks: list[dict[str, Any]], *, intent: str | None = None, owner: str | None = None) -> WorkflowState:
    """A run of `tasks` that completed."""
    dag = parse_dag({"tasks": tasks, "intent": intent}, tool_schemas={t["tool"]: None for t in tasks})
    results = {t.id: TaskResult(id=t.id, layer=0, status=TaskStatus.OK, duration_ms=1.0) for t in dag.tasks}
    return WorkflowState(workflow_id="wf", dag=dag, status=RunStatus.COMPLETED, next_layer=len(dag.layers),
                         results=results, owner=owner)


def chain(*tools: str, value: str = "x") -> list[dict[str, Any]]:
    """Tasks calling `tools` one after the other, the first with the literal `value`."""
    first = {"id": "t0", "tool": tools[0], "arguments": {"value": value}}
    return [first, *({"id": f"t{i}", "tool": tool, "depends_on": [f"t{i - 1}"], "arguments": {}}
                     for i, tool in enumerate(tools[1:], 1))]


async def learned(service: CapabilityService, state: WorkflowState) -> Any:
    row = await service.register(state, KNOWN)
    assert row is not None
    return row


async def test_a_capability_over_three_servers_is_named_after_its_intent_under_workflow(
    service: CapabilityService,
) -> None:
    intent = "Get the current time in Tokyo, then remember it as an entity and echo it"
    row = await learned(service, completed(TIME_MEMORY_ECHO, intent=intent))
    assert row.display_name == "workflow:get_current_time_remember_entity_echo"  # Tokyo: a literal, a parameter
    assert row.fqdn == f"local.default.workflow.get_current_time_remember_entity_echo.{row.pattern_hash[:4]}"
    assert not row.renamed


async def test_without_an_intent_the_name_says_its_tools_in_order_under_their_one_server(
    service: CapabilityService,
) -> None:
    mixed = await learned(service, completed(chain("time:get_current_time", "memory:create_entities")))
    assert mixed.display_name == "workflow:get_current_time_then_create_entities"
    same_server = await learned(service, completed(chain("fs:read_file", "fs:write_file")))
    assert same_server.display_name == "fs:read_file_then_write_file"


async def test_a_capability_called_as_a_task_is_named_by_its_display_name(service: CapabilityService) -> None:
    inner = await learned(service, completed(chain("fs:read_file", "fs:write_file")))
    outer = await learned(service, completed(chain(str(inner.id), "fs:read_file")))
    assert outer.display_name == "fs:read_file_then_write_file_then_read_file"


async def test_a_second_workflow_wanting_a_taken_name_gets_a_short_hash_suffix(service: CapabilityService) -> None:
    first = await learned(service, completed(chain("time:get_current_time", "time:convert_time"), intent="world clock"))
    other = chain("time:get_current_time", "time:convert_time", "time:convert_time")
    second = await learned(service, completed(other, intent="World clock!"))
    assert first.display_name == "time:world_clock"
    assert second.display_name == f"time:world_clock_{second.pattern_hash[:4]}"


async def test_a_name_that_is_a_downstream_tool_id_is_never_given(service: CapabilityService) -> None:
    row = await learned(service, completed(chain("time:get_current_time", "time:convert_time"), intent="convert time"))
    assert row.display_name == f"time:convert_time_{row.pattern_hash[:4]}"  # time:convert_time is the tool


async def test_a_generated_name_never_changes_with_later_runs_or_intents(service: CapabilityService) -> None:
    tools = ("time:get_current_time", "memory:create_entities")
    first = await learned(service, completed(chain(*tools, value="a"), intent="stamp the time"))
    again = await learned(service, completed(chain(*tools, value="b"), intent="something else entirely"))
    assert again.id == first.id and again.usage_count == 2
    assert again.display_name == first.display_name == "workflow:stamp_time"


async def test_two_users_learning_the_same_workflow_get_two_names(service: CapabilityService) -> None:
    tools = chain("fs:read_file", "fs:write_file")
    alice = await learned(service, completed(tools, intent="copy a file", owner="alice"))
    bob = await learned(service, completed(tools, intent="copy a file", owner="bob"))
    assert alice.display_name == "fs:copy_file" and bob.display_name == f"fs:copy_file_{bob.pattern_hash[:4]}"


async def test_a_renamed_capability_keeps_its_generated_name_which_no_one_may_take_then(
    service: CapabilityService, capability_store: CapabilityStore
) -> None:
    first = await learned(service, completed(chain("fs:read_file", "fs:write_file"), intent="copy a file"))
    renamed = await service.rename(first.display_name, namespace="files", action="copy", description=None, tags=None)
    assert renamed.display_name == "files:copy" and renamed.renamed
    found = await capability_store.get("fs:copy_file")  # the old name still calls it
    assert found is not None and found.id == first.id
    other = await learned(service, completed(chain("fs:read_file", "fs:write_file", "fs:write_file"),
                                             intent="copy a file"))
    assert other.display_name == f"fs:copy_file_{other.pattern_hash[:4]}"
    with pytest.raises(InvalidRequestError, match="names another capability") as refused:
        await service.rename(other.display_name, namespace="fs", action="copy_file", description=None, tags=None)
    assert refused.value.field == "action"


async def test_unnamed_only_lists_the_capabilities_no_user_renamed(service: CapabilityService) -> None:
    kept = await learned(service, completed(chain("fs:read_file", "fs:write_file"), intent="copy a file"))
    moved = await learned(service, completed(chain("time:get_current_time", "time:convert_time")))
    named = await learned(service, completed(chain("time:get_current_time", "memory:create_entities")))
    described = await learned(service, completed(chain("fs:write_file", "fs:read_file")))
    await service.rename(moved.display_name, namespace="clock", action=None, description=None, tags=None)
    await service.rename(named.display_name, namespace=None, action="stamp", description=None, tags=None)
    await service.rename(described.display_name, namespace=None, action=None, description=None, tags=["io"],
                         visibility="project")
    unnamed, total = await service.list(pattern=None, unnamed_only=True, limit=10, offset=0)
    assert {row.id for row in unnamed} == {kept.id, described.id} and total == 2
