"""The embedded Postgres starts, stops for good, guards its directory, adopts what a killed gateway left."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import psycopg
import pytest
from psycopg.rows import scalar_row

import gateway
from gateway.db._cluster import SYSTEM_USER
from gateway.db.embedded import EmbeddedPostgres
from gateway.errors import DataDirLockedError

SPAWN_TIMEOUT_S = 60.0
START_BUDGET_S = 2.0
"""The product's target: the gateway ready in under 2 s; an existing data directory starts well within it."""

ORPHAN_SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from gateway.db.embedded import EmbeddedPostgres
    server = EmbeddedPostgres(Path(sys.argv[1]))
    server.start()
    print(server.pid, flush=True)
    sys.stdin.read()  # until killed
""")


@pytest.fixture
def server(pg_dir: Path) -> Iterator[EmbeddedPostgres]:
    handle = EmbeddedPostgres(pg_dir / "data" / "pgdata")
    try:
        yield handle
    finally:
        handle.stop()


def answers(url: str) -> bool:
    with psycopg.connect(url) as conn:
        name = conn.cursor(row_factory=scalar_row).execute("SELECT current_database()").fetchone()
        return bool(name == "pml")


def gone(pid: int) -> bool:
    """Exited; a zombie counts, since an orphan's reaper need not be quick."""
    try:
        return bool(psutil.Process(pid).status() == psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return True


def test_a_started_server_answers_on_the_pml_database_and_is_gone_after_stop(
    server: EmbeddedPostgres,
) -> None:
    url = server.start()
    pid = server.pid
    assert pid is not None and answers(url)
    server.stop()
    assert gone(pid)
    assert not (server.pgdata / "postmaster.pid").exists()
    assert server.pid is None


def test_an_existing_data_directory_starts_within_the_budget(server: EmbeddedPostgres) -> None:
    server.start()
    server.stop()
    began = time.perf_counter()
    url = server.start()
    elapsed = time.perf_counter() - began
    assert answers(url)
    assert elapsed < START_BUDGET_S / 2, f"restart took {elapsed:.3f} s"
    assert server.size_bytes() > 1_000_000


def test_a_second_owner_of_the_directory_is_refused_with_the_first_ones_pid(
    server: EmbeddedPostgres,
) -> None:
    server.start()
    intruder = EmbeddedPostgres(server.pgdata)
    with pytest.raises(DataDirLockedError) as info:
        intruder.start()
    message = str(info.value)
    assert f"another pml-gateway (pid {os.getpid()}) is using {server.pgdata.parent}" in message
    assert "--data-dir" in message and "--database-url" in message
    server.stop()
    assert answers(intruder.start())
    intruder.stop()


def test_a_second_gateway_shares_the_running_server_and_takes_it_over_when_the_first_stops_it(
    server: EmbeddedPostgres,
) -> None:
    url, first = server.start(), server.pid
    second = EmbeddedPostgres(server.pgdata)
    try:
        assert second.share() == url and answers(url)
        assert not second.revive() and second.pid is None  # nothing to take over while the owner runs it
        server.stop()
        assert second.revive()
        assert answers(url) and second.pid not in (None, first)
    finally:
        second.stop()
    assert not (server.pgdata / "postmaster.pid").exists()


def test_a_handle_that_shares_nothing_takes_nothing_over(server: EmbeddedPostgres) -> None:
    server.start()
    server.stop()
    bystander = EmbeddedPostgres(server.pgdata)
    assert not bystander.revive() and bystander.pid is None


def test_a_server_left_by_a_killed_gateway_is_adopted_then_stopped(server: EmbeddedPostgres) -> None:
    orphan_pid = _start_and_kill_an_owner(server.pgdata)
    assert not gone(orphan_pid)
    url = server.start()
    assert server.pid == orphan_pid
    assert answers(url)
    server.stop()
    assert gone(orphan_pid)


def test_a_stale_postmaster_pid_naming_a_live_stranger_does_not_block_the_start(
    server: EmbeddedPostgres,
) -> None:
    server.start()
    lines = (server.pgdata / "postmaster.pid").read_text().splitlines()
    server.stop()
    as_postgres = SYSTEM_USER if os.geteuid() == 0 else None  # a pid Postgres may signal: it counts as alive
    with subprocess.Popen(["cat"], stdin=subprocess.PIPE, user=as_postgres) as stranger:  # idles until killed
        (server.pgdata / "postmaster.pid").write_text("\n".join([str(stranger.pid), *lines[1:]]) + "\n")
        try:
            assert answers(server.start())
            assert server.pid != stranger.pid
        finally:
            stranger.kill()


def test_stop_without_start_does_nothing(server: EmbeddedPostgres) -> None:
    server.stop()
    assert server.pid is None


def _start_and_kill_an_owner(pgdata: Path) -> int:
    """Start a server from another process, SIGKILL that process; the postmaster's pid."""
    env = {**os.environ, "PYTHONPATH": str(Path(gateway.__file__).parent.parent)}
    owner = subprocess.Popen(
        [sys.executable, "-c", ORPHAN_SCRIPT, str(pgdata)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
    )
    try:
        assert owner.stdout is not None
        readable, _, _ = select.select([owner.stdout], [], [], SPAWN_TIMEOUT_S)
        assert readable, "the owner process did not start its server in time"
        pid = int(owner.stdout.readline())
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=SPAWN_TIMEOUT_S)
        for stream in (owner.stdin, owner.stdout):
            if stream is not None:
                stream.close()
    return pid
