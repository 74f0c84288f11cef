"""`open_database` hands out a migrated, pooled database, and always stops what it started."""

from __future__ import annotations

from pathlib import Path

import anyio
import psutil
import pytest

from gateway.db import open_database
from gateway.db.embedded import EmbeddedPostgres
from gateway.errors import DataDirLockedError
from gateway.models import ToolDef

pytestmark = pytest.mark.anyio


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split()[0])


def gone(pid: int) -> bool:
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


async def test_a_database_at_a_url_is_migrated_and_shown_without_its_password(database_url: str) -> None:
    url = database_url.replace("postgres@", "postgres:s3cret@")  # trust auth ignores it; masking must not
    async with open_database(url=url, pgdata=Path("/nonexistent")) as db:
        assert db.embedded is False
        assert "s3cret" not in db.location and "postgres:***@" in db.location
        report = await db.tools.sync_server("fs", [ToolDef(server="fs", name="read")])
        assert report.added == 1
        assert await db.size_bytes() > 1_000_000


async def test_the_embedded_database_is_started_migrated_and_stopped(pg_dir: Path) -> None:
    pgdata = pg_dir / "pgdata"
    async with open_database(url=None, pgdata=pgdata) as db:
        pid = postmaster_pid(pgdata)
        assert db.embedded is True and db.location == str(pgdata)
        assert await db.tools.all_tools() == []
        assert await db.size_bytes() > 10_000_000
    assert gone(pid)


async def test_a_cancelled_gateway_still_stops_its_embedded_server(pg_dir: Path) -> None:
    pgdata = pg_dir / "pgdata"
    with anyio.CancelScope() as scope:
        async with open_database(url=None, pgdata=pgdata):
            pid = postmaster_pid(pgdata)
            scope.cancel()
            await anyio.sleep_forever()
    assert scope.cancelled_caught
    assert gone(pid)
    second = EmbeddedPostgres(pgdata)  # the directory's lock was released too
    second.start()
    second.stop()


async def test_status_may_share_the_server_another_gateway_runs_and_leaves_it_running(pg_dir: Path) -> None:
    owner = EmbeddedPostgres(pg_dir / "pgdata")
    owner.start()
    try:
        async with open_database(url=None, pgdata=pg_dir / "pgdata", share_running=True) as db:
            assert db.embedded is True and await db.tools.server_statuses() == []
        assert owner.pid is not None and not gone(owner.pid)
    finally:
        owner.stop()


async def test_a_data_directory_owned_by_another_gateway_is_refused(pg_dir: Path) -> None:
    owner = EmbeddedPostgres(pg_dir / "pgdata")
    owner.start()
    try:
        with pytest.raises(DataDirLockedError):
            async with open_database(url=None, pgdata=pg_dir / "pgdata"):
                pytest.fail("opened a database another gateway owns")
    finally:
        owner.stop()
