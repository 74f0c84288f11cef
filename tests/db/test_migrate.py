"""Migrations apply once, in order, atomically, and under a lock that two gateways share."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import anyio
import psycopg
import pytest
from psycopg.rows import dict_row, scalar_row

from gateway.db.migrate import _LOCK_KEY, MIGRATIONS_DIR, discover, migrate
from gateway.errors import MigrationError
from tests.eventually import eventually

pytestmark = pytest.mark.anyio

RECORDED = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
TABLE = "SELECT to_regclass(%s)::text"
PACKAGED = [m.name for m in discover(MIGRATIONS_DIR)]
WAITING_FOR_LOCK = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND NOT granted
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


def rows(url: str, sql: Any, *params: object) -> list[dict[str, Any]]:
    with psycopg.connect(url, row_factory=dict_row) as conn:
        return conn.execute(sql, params or None).fetchall()


def table_exists(url: str, name: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.cursor(row_factory=scalar_row).execute(TABLE, (name,)).fetchone() is not None


def write(directory: Path, files: dict[str, str]) -> Path:
    directory.mkdir(exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


async def test_a_fresh_database_gets_0001_applied_and_recorded(database_url: str) -> None:
    assert await migrate(database_url) == PACKAGED
    checksum = hashlib.sha256((MIGRATIONS_DIR / "0001_tool_index.sql").read_bytes()).hexdigest()
    assert rows(database_url, RECORDED)[0] == {"version": 1, "name": "0001_tool_index", "checksum": checksum}
    for table in ("tool_schema", "tool_embedding", "server_status"):
        assert table_exists(database_url, table), table


async def test_a_second_run_applies_nothing(database_url: str) -> None:
    await migrate(database_url)
    assert await migrate(database_url) == []
    assert len(rows(database_url, RECORDED)) == len(PACKAGED)


async def test_a_broken_migration_names_its_file_and_leaves_nothing_of_itself(
    database_url: str, tmp_path: Path
) -> None:
    migrations = write(tmp_path / "m", {
        "0001_good.sql": "CREATE TABLE good (id int);",
        "0002_broken.sql": "CREATE TABLE half (id int);\nSELECT no_such_function();",
        "0003_never.sql": "CREATE TABLE never (id int);",
    })
    failure = r"0002_broken\.sql failed: function no_such_function\(\) does not exist"
    with pytest.raises(MigrationError, match=failure):
        await migrate(database_url, migrations)
    assert table_exists(database_url, "good")
    assert not table_exists(database_url, "half")
    assert not table_exists(database_url, "never")
    assert [row["version"] for row in rows(database_url, RECORDED)] == [1]


async def test_two_gateways_migrating_at_once_apply_each_file_once(database_url: str) -> None:
    results: list[list[str]] = []

    async def run() -> None:
        results.append(await migrate(database_url))

    with psycopg.connect(database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        async with anyio.create_task_group() as tg:
            tg.start_soon(run)
            tg.start_soon(run)
            await _until_waiting_for_lock(database_url, 2)
            holder.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    assert sorted(results) == [[], PACKAGED]
    assert len(rows(database_url, RECORDED)) == len(PACKAGED)


async def test_an_edited_applied_migration_is_reported_not_reapplied(
    database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    migrations = write(tmp_path / "m", {"0001_t.sql": "CREATE TABLE t (id int);"})
    await migrate(database_url, migrations)
    write(migrations, {"0001_t.sql": "CREATE TABLE t (id int, more text);"})
    with caplog.at_level(logging.WARNING, logger="gateway.db.migrate"):
        assert await migrate(database_url, migrations) == []
    assert "0001_t.sql changed since it was applied" in caplog.text


async def test_a_badly_named_file_is_refused(database_url: str, tmp_path: Path) -> None:
    migrations = write(tmp_path / "m", {"1_short.sql": "SELECT 1;"})
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        await migrate(database_url, migrations)


async def _until_waiting_for_lock(url: str, count: int) -> None:
    """Both migrators are blocked on the advisory lock (polled: Postgres sends no event for it)."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.cursor(row_factory=scalar_row)
        await eventually(lambda: cursor.execute(WAITING_FOR_LOCK).fetchone() == count, timeout_s=10, interval_s=0.01,
                         what=f"{count} migrators waiting for the lock")
