"""Random and malformed DAG documents thrown at execute_dag: always an error naming the problem, never a crash."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from tests.e2e.support import gateway_client, text_of
from tests.e2e.test_gateway import indexed  # noqa: F401 - the fixture

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
IDS = st.sampled_from(["a", "b", "c", "", "a b", "$x", "x" * 70])
TOOLS = st.sampled_from(["faulty:echo", "faulty:ecko", "echo", "faulty:", ":echo", "notes:write_note", "x:y:z"])
REFS = st.sampled_from(["$OUTPUT[a]", "$OUTPUT[b].result", "$OUTPUT[zz]", "$OUTPUT[", "$OUTPUT[a].x[9]", "plain"])
TASK = st.fixed_dictionaries(
    {"id": IDS | JSON, "tool": TOOLS | JSON},
    optional={"arguments": st.dictionaries(st.sampled_from(["text", "ms", "zz"]), REFS | JSON, max_size=3) | JSON,
              "depends_on": st.lists(IDS, max_size=3) | JSON},
)
DOCUMENT = st.fixed_dictionaries(
    {"tasks": st.lists(TASK, max_size=6) | JSON},
    optional={"options": st.dictionaries(st.sampled_from(["max_concurrency", "timeout_ms", "per_layer_validation",
                                                         "colour"]), JSON, max_size=3) | JSON,
              "intent": JSON},
) | st.dictionaries(st.text(max_size=8), JSON, max_size=4)


@pytest.fixture
def live_client(indexed: Path, database_url: str) -> Iterator[tuple[BlockingPortal, Client]]:  # noqa: F811
    """One gateway for the whole property run, driven from hypothesis's synchronous examples."""
    with start_blocking_portal("asyncio") as portal:
        context = gateway_client(indexed, "--database-url", database_url)
        with portal.wrap_async_context_manager(context) as client:
            yield portal, client


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=DOCUMENT)
def test_execute_dag_answers_every_malformed_document_with_an_error(
    live_client: tuple[BlockingPortal, Client], document: dict[str, Any]
) -> None:
    portal, client = live_client
    result = portal.call(_call, client, document)
    text = text_of(result)
    if result.is_error:
        assert text.strip() and "internal error" not in text, text
    else:
        assert result.structured_content["status"] in ("completed", "failed", "approval_required"), text


def test_the_gateway_is_still_usable_after_the_fuzzing(live_client: tuple[BlockingPortal, Client]) -> None:
    portal, client = live_client
    for document in ({"tasks": None}, {"tasks": [{"id": 1}]}, {"tasks": [{"id": "a", "tool": "faulty:echo"}] * 2}):
        assert portal.call(_call, client, document).is_error
    ok = portal.call(_call, client, {"tasks": [{"id": "a", "tool": "faulty:echo", "arguments": {"text": "hi"}}]})
    assert not ok.is_error and "hi" in text_of(ok)


async def _call(client: Client, document: dict[str, Any]) -> Any:
    with anyio.fail_after(30):
        return await client.call_tool("execute_dag", document)
