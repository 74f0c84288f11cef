"""Telemetry end to end: what a client does through the real SDK client lands in `metrics` and `error_log`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row

from tests.e2e.support import gateway_client, search
from tests.e2e.test_gateway import indexed  # noqa: F401  (the fixture: a servers file already indexed)
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

SERIES = "SELECT metric_name, metadata FROM metrics ORDER BY id"
ERRORS = "SELECT error_type, message FROM error_log ORDER BY id"


async def rows_until(database_url: str, sql: Any, wanted: Any, timeout_s: float = 20.0) -> list[dict[str, Any]]:
    """The rows of `sql` once `wanted(rows)` holds (the gateway writes its telemetry about once a second)."""

    async def found() -> tuple[list[dict[str, Any]]] | None:  # in a tuple: wanted may hold of no rows at all
        async with await psycopg.AsyncConnection.connect(database_url, row_factory=dict_row) as conn:
            rows = await (await conn.execute(sql)).fetchall()
        return (rows,) if wanted(rows) else None

    (rows,) = await eventually(found, timeout_s=timeout_s, interval_s=0.2, what=f"the rows wanted of {sql!r}")
    return rows


async def test_a_search_and_a_proxied_call_are_measured_and_a_refused_call_is_logged(
    indexed: Path, database_url: str  # noqa: F811
) -> None:
    call = {"metric_name": "pml_tool_call_latency_ms",
            "metadata": {"tool": "time:get_current_time", "outcome": "ok"}}
    async with gateway_client(indexed, "--database-url", database_url) as client:
        hit = (await search(client, "what time is it in Tokyo"))["results"][0]
        result = await client.call_tool(hit["call_as"], {"timezone": "Asia/Tokyo"})
        refused = await client.call_tool("search_tools", {"query": "time", "limit": 0})
        series = await rows_until(database_url, SERIES, lambda rows: call in rows)
        errors = await rows_until(database_url, ERRORS, bool)
    assert not result.is_error and refused.is_error
    assert {"metric_name": "pml_search_latency_ms", "metadata": {}} in series
    assert any(r["metadata"] == {"server": "time", "state": "running"} for r in series), series
    assert errors == [{"error_type": "InvalidRequestError", "message": errors[0]["message"]}]
    assert "limit" in errors[0]["message"]
