"""Writes that meet an outage wait, in order, and are made once the database answers; refusals are not retried."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import anyio
import pytest

from gateway.errors import DatabaseError, DatabaseUnavailableError
from gateway.services.backlog import Backlog
from tests.eventually import eventually

pytestmark = pytest.mark.anyio


class Database:
    """What the writes reach: down or up, and what it holds (the backlog sees only its errors)."""

    def __init__(self) -> None:
        self.up = True
        self.rows: list[str] = []
        self.refused = 0  # tries that met the outage

    def write(self, row: str) -> Callable[[], Awaitable[None]]:
        async def insert() -> None:
            if not self.up:
                self.refused += 1
                raise DatabaseUnavailableError(f"writing {row} failed: the database is unreachable")
            self.rows.append(row)

        return insert


async def test_writes_made_while_the_database_is_away_are_made_in_order_once_it_is_back() -> None:
    db, backlog = Database(), Backlog(retry_s=0.05)
    async with anyio.create_task_group() as tg:
        await tg.start(backlog.run)
        await backlog.attempt("run 1", db.write("1"))
        db.up = False
        await backlog.attempt("run 2", db.write("2"))
        await backlog.attempt("run 3", db.write("3"))
        assert (db.rows, len(backlog)) == (["1"], 2)
        refused = db.refused
        await eventually(lambda: db.refused >= refused + 2)  # retried twice and still away
        assert len(backlog) == 2
        db.up = True
        await backlog.attempt("run 4", db.write("4"))  # behind the waiting ones, not before them
        await eventually(lambda: len(backlog) == 0)
        tg.cancel_scope.cancel()
    assert db.rows == ["1", "2", "3", "4"]
    assert backlog.given_up == 0


async def test_a_refused_write_is_not_retried_and_the_next_ones_still_go(caplog: pytest.LogCaptureFixture) -> None:
    db, backlog = Database(), Backlog(retry_s=0.05)
    attempts = 0

    async def refused() -> None:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise DatabaseUnavailableError("away")
        raise DatabaseError("a constraint says no")

    async with anyio.create_task_group() as tg:
        await tg.start(backlog.run)
        await backlog.attempt("the refused one", refused)
        await backlog.attempt("the next one", db.write("next"))
        await eventually(lambda: len(backlog) == 0)
        tg.cancel_scope.cancel()
    assert (attempts, db.rows) == (2, ["next"])
    assert "the refused one failed after waiting for the database; given up" in caplog.text


async def test_past_its_bound_the_oldest_writes_are_given_up_and_counted(caplog: pytest.LogCaptureFixture) -> None:
    db, backlog = Database(), Backlog(max_writes=2)
    db.up = False
    with caplog.at_level(logging.ERROR, logger="gateway.services.backlog"):
        for n in range(4):
            await backlog.attempt(f"run {n}", db.write(str(n)))
    assert (len(backlog), backlog.given_up) == (2, 2)
    assert "run 0 given up: 2 writes already wait for the database" in caplog.text


async def test_at_shutdown_the_waiting_writes_get_one_last_try_and_what_is_left_is_counted() -> None:
    db, backlog = Database(), Backlog(retry_s=60)
    db.up = False
    async with anyio.create_task_group() as tg:
        await tg.start(backlog.run)
        await backlog.attempt("run 1", db.write("1"))
        await eventually(lambda: db.refused == 2)  # the first retry failed; the next is a minute away
        db.up = True
        tg.cancel_scope.cancel()
    assert (db.rows, len(backlog), backlog.given_up) == (["1"], 0, 0)

    db.up = False
    async with anyio.create_task_group() as tg:
        await tg.start(backlog.run)
        await backlog.attempt("run 2", db.write("2"))
        tg.cancel_scope.cancel()
    assert (db.rows, len(backlog), backlog.given_up) == (["1"], 0, 1)
