"""`pml-gateway stats` against a real Postgres: each series of the window summed up exactly, errors counted, and
every label printed whole, piped or on a narrow terminal."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from io import StringIO
from typing import Any, LiteralString

import anyio
import pytest
from rich.console import Console

from gateway import cli
from gateway.cli._console import command_console
from gateway.cli.stats import errors_table, metrics_table
from gateway.db import migrate, open_pool
from gateway.db.learning import ErrorCount, MetricStat
from tests.e2e.support import ROOT, gateway_command, gateway_env

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
    run_sql(url, ROWS)


def run_sql(url: str, statements: list[LiteralString], params: dict[str, Any] | None = None) -> None:
    """Migrate the database at `url`, then run `statements` on it (each with `params`)."""

    async def run_all() -> None:
        await migrate(url)
        pool = await open_pool(url, max_size=1)
        try:
            async with pool.connection() as conn:
                for statement in statements:
                    await conn.execute(statement, params)
        finally:
            await pool.close()

    anyio.run(run_all)


@pytest.fixture(autouse=True)
def _no_pml_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``PML_*`` of the developer's shell leaks into the in-process runs, nor a ``COLUMNS`` that would hide
    how wide a piped table is."""
    for key in [k for k in os.environ if k.startswith("PML_")]:
        monkeypatch.delenv(key)
    monkeypatch.delenv("COLUMNS", raising=False)


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
    ]
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
            if line.startswith("│")]
    assert ["pml_tool_call_latency_ms", "outcome=ok, tool=time:get_current_time", "2", "10.0", "10.0", "14.5",
            "15.0"] in rows
    assert ["CallTimeoutError", "2"] == rows[-1][:2]


LONG_TOOL = "a-server-with-a-rather-long-name:" + "_".join(["a_tool_whose_name_goes_on"] * 6)
LONG_LABELS = {"tool": LONG_TOOL, "outcome": "ok"}
LONG_LABEL = f"outcome=ok, tool={LONG_TOOL}"


def test_stats_piped_prints_every_label_whole_on_one_line(database_url: str) -> None:
    insert(database_url)
    run_sql(database_url, ["INSERT INTO metrics (metric_name, value, metadata) VALUES ('pml_tool_call_latency_ms', "
                           "7, jsonb_build_object('outcome', 'ok', 'tool', %(tool)s::text))"], {"tool": LONG_TOOL})
    env = {k: v for k, v in gateway_env().items() if k != "COLUMNS"}
    done = subprocess.run(gateway_command("stats", "--database-url", database_url), capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, stdin=subprocess.DEVNULL, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert len(LONG_LABEL) > 200
    assert any(LONG_LABEL in line and "7.0" in line for line in done.stdout.splitlines()), done.stdout


def test_a_table_on_a_narrow_terminal_wraps_a_long_label_instead_of_cutting_it() -> None:
    out = StringIO()
    Console(file=out, width=60, force_terminal=True, color_system=None).print(metrics_table([_long_series()], 24))
    labels = [line.split("│")[2].strip() for line in out.getvalue().splitlines() if line.startswith("│")]
    assert "…" not in out.getvalue()
    assert "".join(labels).replace(" ", "") == LONG_LABEL.replace(" ", "")


def test_the_command_console_is_as_wide_as_the_longest_row_when_not_a_terminal() -> None:
    out = StringIO()
    console = command_console(file=out)
    console.print(metrics_table([_long_series()], 24))
    console.print(errors_table([ErrorCount(error_type="E" * 150, count=1, last_seen=datetime.now(UTC))], 24))
    assert not console.is_terminal
    assert [line for line in out.getvalue().splitlines() if LONG_LABEL in line]
    assert [line for line in out.getvalue().splitlines() if "E" * 150 in line]


def _long_series() -> MetricStat:
    return MetricStat(name="pml_tool_call_latency_ms", labels=LONG_LABELS, count=1, avg=7.0, p50=7.0, p95=7.0,
                      max=7.0)
