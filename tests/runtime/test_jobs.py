"""The pruner applies the retention policies round after round, and a failed round does not stop the next ones
(on the real database: a round fails while a table it prunes is missing)."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import psycopg
import pytest

from gateway.db import open_database
from gateway.runtime.jobs import Pruner

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
    database_url: str, tmp_path: Path
) -> None:
    rounds, logger = Rounds(), logging.getLogger("gateway.runtime.jobs")
    level = logger.level
    logger.addHandler(rounds)
    logger.setLevel(logging.INFO)
    try:
        async with open_database(url=database_url, pgdata=tmp_path / "unused") as db:
            sql(database_url, "ALTER TABLE metrics RENAME TO metrics_away")
            with anyio.fail_after(20):
                async with anyio.create_task_group() as tg:
                    await tg.start(Pruner(db.retention, delay_s=0.0, interval_s=0.05).run)
                    await rounds.failed.wait()
                    sql(database_url, "ALTER TABLE metrics_away RENAME TO metrics")
                    await rounds.pruned_twice.wait()
                    tg.cancel_scope.cancel()
    finally:
        logger.removeHandler(rounds)
        logger.setLevel(level)
    assert rounds.lines[0] == ("ERROR", "pruning the database failed")
    assert next(text for _, text in rounds.lines if text.startswith("pruned:")).startswith("pruned: workflow_dags 0")
