"""Hostile input at the MCP edge: numbers past any sensible bound and NUL characters in the meta-tools' strings are
refused with an error that names the field and what was expected, never a raw Postgres message.

One gateway (over the notes, faulty and time servers and a database of its own) serves the whole module.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from mcp import Client

from gateway.db import CapabilityStore
from gateway.errors import DatabaseInputError, InvalidRequestError
from gateway.server import meta
from tests.conftest import fresh_database
from tests.e2e.support import gateway_client, servers_file, text_of

pytestmark = pytest.mark.anyio

NUL = "must not contain NUL (U+0000) characters"


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
def database(postgres_url: str) -> Iterator[str]:
    with fresh_database(postgres_url, "inputs") as url:
        yield url


@pytest.fixture(scope="module")
async def client(tmp_path_factory: pytest.TempPathFactory, database: str) -> AsyncIterator[Client]:
    """One gateway for the module: every test here only sends it what it must refuse."""
    config = servers_file(tmp_path_factory.mktemp("inputs"))
    async with gateway_client(config, "--database-url", database) as gateway:
        yield gateway


async def refusal(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    """The text of the error result `tool` answers `arguments` with."""
    result = await client.call_tool(tool, arguments)
    assert result.is_error, f"{tool} accepted {arguments!r}: {text_of(result)}"
    return text_of(result)


async def test_a_cap_list_offset_past_the_bound_is_refused_naming_the_field_and_the_bound(client: Client) -> None:
    message = await refusal(client, "cap_list", {"offset": 10**12})
    assert message == "cap_list: argument 'offset': 1000000000000 is greater than the maximum of 1000000"


@pytest.mark.parametrize(
    ("tool", "arguments", "field"),
    [
        ("search_tools", {"query": "what time\x00 is it"}, "query"),
        ("search_tools", {"query": "what time is it", "server": "ti\x00me"}, "server"),
        ("search_tools", {"query": "what time is it", "context_tools": ["time:get\x00"]}, "context_tools.0"),
        ("call_tool", {"tool": "faulty:ec\x00ho", "arguments": {"text": "x"}}, "tool"),
        ("call_tool", {"tool": "demo:re\x00lay"}, "tool"),
        ("execute_dag", {"intent": "say hello\x00"}, "intent"),
        ("execute_dag", {"intent": "say hello\x00", "tasks": [{"id": "a", "tool": "faulty:echo",
                                                            "arguments": {"text": "x"}}]}, "intent"),
        ("execute_dag", {"tasks": [{"id": "a", "tool": "demo:re\x00lay"}]}, "tasks.0.tool"),
        ("execute_dag", {"tasks": [{"id": "a\x00", "tool": "faulty:echo"}]}, "tasks.0.id"),
        ("execute_dag", {"tasks": [{"id": "a", "tool": "faulty:echo", "depends_on": ["b\x00"]}]},
         "tasks.0.depends_on.0"),
        ("workflow", {"workflow_id": "wf\x00", "action": "status"}, "workflow_id"),
        ("cap_list", {"pattern": "notes:\x00*"}, "pattern"),
        ("cap_rename", {"name": "demo:re\x00lay", "namespace": "demo"}, "name"),
        ("cap_rename", {"name": "demo:relay", "description": "relays\x00"}, "description"),
        ("cap_rename", {"name": "demo:relay", "tags": ["ok", "t\x00"]}, "tags.1"),
        ("cap_merge", {"source": "demo:a\x00", "target": "demo:b"}, "source"),
        ("cap_merge", {"source": "demo:a", "target": "demo:b\x00"}, "target"),
    ],
)
async def test_a_nul_character_in_a_meta_tool_string_is_refused_naming_the_field(
    client: Client, tool: str, arguments: dict[str, Any], field: str
) -> None:
    assert await refusal(client, tool, arguments) == f"{tool}: argument '{field}': {NUL}"


async def test_a_nul_inside_a_tools_own_arguments_is_not_refused_at_the_edge_but_forwarded(client: Client) -> None:
    result = await client.call_tool("call_tool", {"tool": "faulty:echo", "arguments": {"text": "a\x00b"}})
    assert not result.is_error and text_of(result) == "a\x00b"


async def test_a_value_postgres_refuses_leaves_the_store_as_a_database_input_error(
    capability_store: CapabilityStore,
) -> None:
    with pytest.raises(DatabaseInputError) as caught:
        await capability_store.list(like=None, unnamed_only=False, limit=1, offset=10**12)
    assert str(caught.value) == "listing capabilities failed: integer out of range"


def test_a_lone_surrogate_in_a_meta_tool_string_is_refused_naming_the_field() -> None:
    # Over HTTP (2026 protocol, no session) json.loads lets "\ud800" through to the handler, and the tokenizer
    # then failed with an internal error; over stdio the transport refuses the line before.
    with pytest.raises(InvalidRequestError) as caught:
        meta.check_arguments(meta.SEARCH_TOOLS, {"query": "time in \ud800 Tokyo"})
    assert str(caught.value) == (
        "search_tools: argument 'query': must be Unicode text: a lone surrogate (U+D800 to U+DFFF) is not")
    assert caught.value.field == "query"
