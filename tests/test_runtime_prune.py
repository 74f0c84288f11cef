"""The running gateway applies the retention policies by itself, round after round, and a failed round does not
stop the next ones."""

from __future__ import annotations

import logging
from typing import cast

import anyio
import pytest

from gateway import runtime
from gateway.config import GatewayConfig, Settings
from gateway.db import Database
from gateway.errors import DatabaseError

pytestmark = pytest.mark.anyio


class FlakyRetention:
    """Fails its first round, then reports one deleted event per round; `third` is set on the third round."""

    def __init__(self) -> None:
        self.rounds = 0
        self.third = anyio.Event()

    async def prune(self) -> dict[str, int]:
        self.rounds += 1
        if self.rounds == 3:
            self.third.set()
        if self.rounds == 1:
            raise DatabaseError("pruning (prune_old_events) failed: the server is gone")
        return {"workflow_dags": 0, "episodic_events": 1}


class FakeDatabase:
    def __init__(self) -> None:
        self.retention = FlakyRetention()


async def test_the_prune_runs_after_start_and_again_each_interval_despite_a_failed_round(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(runtime, "PRUNE_DELAY_S", 0.0)
    monkeypatch.setattr(runtime, "PRUNE_INTERVAL_S", 0.0)
    gateway = runtime.Runtime(settings=Settings(), config=GatewayConfig())
    db = FakeDatabase()
    caplog.set_level(logging.INFO, logger="gateway.runtime")
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            tg.start_soon(gateway._prune_periodically, cast(Database, db))
            await db.retention.third.wait()
            tg.cancel_scope.cancel()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "gateway.runtime"]
    assert messages[:3] == [("ERROR", "pruning the database failed"),
                            ("INFO", "pruned: workflow_dags 0, episodic_events 1"),
                            ("INFO", "pruned: workflow_dags 0, episodic_events 1")]
