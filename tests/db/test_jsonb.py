"""NUL characters go into jsonb and come back as they were."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.db.jsonb import dumps, loads
from gateway.db.pool import Pool
from gateway.db.workflows import WorkflowStore


@pytest.mark.parametrize("value", [
    "a\x00b", {"k\x00": ["\x00", "\\u0000", "\\\x00", "\ufdd0x"[1:]]}, "\\\\u0000", 3, None,
])
def test_dumps_writes_no_nul_escape_and_loads_gives_the_value_back(value: object) -> None:
    text = dumps(value)
    assert "\\u0000" not in text.replace("\\\\", "")
    assert loads(text) == value
    assert loads(text.encode()) == value


@given(st.recursive(st.text() | st.integers() | st.none(),
                    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner), max_leaves=20))
def test_any_value_without_the_stand_in_round_trips(value: object) -> None:
    if "\ufdd0" in json.dumps(value, ensure_ascii=False):
        return
    assert loads(dumps(value)) == value


@pytest.mark.anyio
async def test_a_checkpoint_with_nul_in_its_output_is_saved_and_read_back(workflow_store: WorkflowStore) -> None:
    state = {"workflow_id": "wf_nul", "results": [{"id": "t", "output": "before\x00after", "k\x00": None}]}
    await workflow_store.save_checkpoint("wf_nul", 1, state)
    assert await workflow_store.latest_checkpoint("wf_nul") == state


@pytest.mark.anyio
async def test_a_run_whose_error_message_holds_a_nul_is_recorded(workflow_store: WorkflowStore, pool: Pool) -> None:
    await workflow_store.record_execution(workflow_id="wf_err", intent="i", dag={"tasks": []}, success=False,
                                          execution_time_ms=1, error="t: server said \x00bad")
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT error_message FROM workflow_execution WHERE workflow_id = 'wf_err'")
                     ).fetchone()
    assert row == ("t: server said \ufdd0bad",)
