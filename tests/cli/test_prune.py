"""`pml-gateway prune` against a real Postgres: it deletes what the retention policies no longer keep and prints
how many rows it deleted from each table."""

from __future__ import annotations

import os
from typing import LiteralString

import anyio
import pytest
from psycopg.rows import scalar_row

from gateway import cli
from gateway.db import migrate, open_pool

AGED = [
    "INSERT INTO workflow_dags (workflow_id, dag, expires_at) VALUES ('gone', '{}', now() - interval '1 minute')",
    "INSERT INTO workflow_dags (workflow_id, dag) VALUES ('kept', '{}')",
    "INSERT INTO episodic_events (workflow_id, event_type, data, \"timestamp\") "
    "SELECT 'wf', 'task_end', '{}', now() - n * interval '20 days' FROM generate_series(0, 3) n",
    "INSERT INTO metrics (metric_name, value, \"timestamp\") "
    "SELECT 'latency', n, now() - n * interval '50 days' FROM generate_series(0, 4) n",
]
REMAINING = "SELECT (SELECT count(*) FROM episodic_events) * 100 + (SELECT count(*) FROM metrics) * 10 " \
            "+ (SELECT count(*) FROM workflow_dags)"


def run_sql(url: str, statements: list[LiteralString]) -> int:
    """Migrate, run `statements`, and return the last one's single value (if it has one)."""

    async def run_all() -> int:
        await migrate(url)
        pool = await open_pool(url, max_size=1)
        try:
            async with pool.connection() as conn:
                value = None
                for statement in statements:
                    cursor = await conn.cursor(row_factory=scalar_row).execute(statement)
                    value = await cursor.fetchone() if cursor.description else None
                return int(value or 0)
        finally:
            await pool.close()

    return anyio.run(run_all)


@pytest.fixture(autouse=True)
def _no_pml_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``PML_*`` of the developer's shell leaks into the in-process runs; tables wide enough to read."""
    for key in [k for k in os.environ if k.startswith("PML_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("COLUMNS", "200")


def rows_deleted(out: str) -> dict[str, int]:
    """The ``table | rows deleted`` rows of the printed table."""
    cells = [line.strip("│ ").split("│") for line in out.splitlines() if line.startswith("│")]
    return {name.strip(): int(count) for name, count in cells if count.strip().isdigit()}


def test_prune_deletes_the_aged_rows_and_prints_the_count_of_each_table(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_sql(database_url, [*AGED, REMAINING]) == 4 * 100 + 5 * 10 + 2
    capsys.readouterr()
    assert cli.main(["prune", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert rows_deleted(out) == {"workflow_dags": 1, "workflow_checkpoint": 0, "workflow_execution": 0,
                                 "episodic_events": 2, "metrics": 3, "error_log": 0, "http_session": 0,
                                 "rate_limit_window": 0, "oauth_pending": 0, "oauth_code": 0, "oauth_token": 0}
    assert run_sql(database_url, [REMAINING]) == 2 * 100 + 2 * 10 + 1
    assert cli.main(["prune", "--database-url", database_url]) == 0
    assert set(rows_deleted(capsys.readouterr().out).values()) == {0}
