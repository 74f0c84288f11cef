"""`pml-gateway stats` against a real Postgres: each series of the window summed up exactly, errors counted."""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any, LiteralString

import anyio
import pytest

from gateway import cli
from gateway.db import migrate, open_pool

ROWS: list[LiteralString] = [
    "INSERT INTO metrics (metric_name, value, metadata) "
    "SELECT 'pml_search_latency_ms', v, '{}' FROM unnest(ARRAY[10, 20, 30, 40]) v",
    "INSERT INTO metrics (metric_name, value, metadata, \"timestamp\") "
    "VALUES ('pml_search_latency_ms', 1000, '{}', now() - interval '30 hours')",
    "INSERT INTO metrics (metric_name, value, metadata) "
    "SELECT 'pml_tool_call_latency_ms', v, '{\"tool\": \"time:get_current_time\", \"outcome\": \"ok\"}' "
    "FROM unnest(ARRAY[5, 15]) v",
    "INSERT INTO metrics (metric_name, value, metadata) "
    "SELECT 'pml_workflows_total', 1, '{\"status\": \"completed\"}' FROM generate_series(1, 3)",
    "INSERT INTO error_log (error_type, message) VALUES ('CallTimeoutError', 'late'), ('CallTimeoutError', 'late')",
    "INSERT INTO error_log (error_type, message, \"timestamp\") "
    "VALUES ('InvalidRequestError', 'bad', now() - interval '48 hours')",
]
CALL_LABELS = {"tool": "time:get_current_time", "outcome": "ok"}


def insert(url: str) -> None:
    async def run_all() -> None:
        await migrate(url)
        pool = await open_pool(url, max_size=1)
        try:
            async with pool.connection() as conn:
                for statement in ROWS:
                    await conn.execute(statement)
        finally:
            await pool.close()

    anyio.run(run_all)


@pytest.fixture(autouse=True)
def _no_pml_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``PML_*`` of the developer's shell leaks into the in-process runs; tables wide enough to read."""
    for key in [k for k in os.environ if k.startswith("PML_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "200")


def stats_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, Any]:
    capsys.readouterr()
    assert cli.main(["stats", *args, "--json"]) == 0
    result: dict[str, Any] = json.loads(capsys.readouterr().out.splitlines()[-1])
    return result


def test_stats_sums_up_each_series_of_the_last_day_exactly(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    insert(database_url)
    result = stats_json(capsys, "--database-url", database_url)
    assert result["since_hours"] == 24
    assert result["metrics"] == [
        {"name": "pml_search_latency_ms", "labels": {}, "count": 4, "avg": 25.0, "p50": 25.0, "p95": 38.5,
         "max": 40.0},
        {"name": "pml_tool_call_latency_ms", "labels": CALL_LABELS, "count": 2, "avg": 10.0, "p50": 10.0,
         "p95": 14.5, "max": 15.0},
        {"name": "pml_workflows_total", "labels": {"status": "completed"}, "count": 3, "avg": 1.0, "p50": 1.0,
         "p95": 1.0, "max": 1.0},
    ]  # fmt: skip
    assert [(e["type"], e["count"]) for e in result["errors"]] == [("CallTimeoutError", 2)]
    assert datetime.fromisoformat(result["errors"][0]["last_seen"]).tzinfo is not None


def test_a_longer_window_takes_in_the_older_rows(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    insert(database_url)
    result = stats_json(capsys, "--database-url", database_url, "--since", "72")
    search = result["metrics"][0]
    assert (search["name"], search["count"], search["avg"], search["max"]) == (
        "pml_search_latency_ms", 5, 220.0, 1000.0)
    assert [(e["type"], e["count"]) for e in result["errors"]] == [("CallTimeoutError", 2), ("InvalidRequestError", 1)]


def test_stats_prints_a_table_of_the_metrics_and_one_of_the_errors(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    insert(database_url)
    capsys.readouterr()
    assert cli.main(["stats", "--database-url", database_url]) == 0
    rows = [[cell.strip() for cell in line.strip("│ ").split("│")] for line in capsys.readouterr().out.splitlines()
            if line.startswith("│")]  # fmt: skip
    assert ["pml_tool_call_latency_ms", "outcome=ok, tool=time:get_current_time", "2", "10.0", "10.0", "14.5",
            "15.0"] in rows  # fmt: skip
    assert ["CallTimeoutError", "2"] == rows[-1][:2]
