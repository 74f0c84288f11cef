"""The running gateway applies the retention policies by itself, round after round, and a failed round does not
stop the next ones (on the real database: a round fails while a table it prunes is missing)."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import psycopg
import pytest

from gateway import runtime
from gateway.config import GatewayConfig, Settings
from gateway.db import open_database

pytestmark = pytest.mark.anyio


def sql(url: str, statement: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement.encode())


class Rounds(logging.Handler):
    """The prune's log lines, with an event for the first failure and one for the second success."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[str, str]] = []
        self.failed = anyio.Event()
        self.pruned_twice = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((record.levelname, record.getMessage()))
        if record.levelno >= logging.ERROR:
            self.failed.set()
        if sum(1 for _, text in self.lines if text.startswith("pruned:")) >= 2:
            self.pruned_twice.set()


async def test_the_prune_runs_after_start_and_again_each_interval_despite_a_failed_round(
    monkeypatch: pytest.MonkeyPatch, database_url: str, tmp_path: Path
) -> None:
    monkeypatch.setattr(runtime, "PRUNE_DELAY_S", 0.0)
    monkeypatch.setattr(runtime, "PRUNE_INTERVAL_S", 0.05)
    gateway = runtime.Runtime(settings=Settings(), config=GatewayConfig())
    rounds, logger = Rounds(), logging.getLogger("gateway.runtime")
    level = logger.level
    logger.addHandler(rounds)
    logger.setLevel(logging.INFO)
    try:
        async with open_database(url=database_url, pgdata=tmp_path / "unused") as db:
            sql(database_url, "ALTER TABLE metrics RENAME TO metrics_away")
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(gateway._prune_periodically, db)
                    await rounds.failed.wait()
                    sql(database_url, "ALTER TABLE metrics_away RENAME TO metrics")
                    await rounds.pruned_twice.wait()
                    tg.cancel_scope.cancel()
    finally:
        logger.removeHandler(rounds)
        logger.setLevel(level)
    assert rounds.lines[0] == ("ERROR", "pruning the database failed")
    assert next(text for _, text in rounds.lines if text.startswith("pruned:")).startswith("pruned: workflow_dags 0")
