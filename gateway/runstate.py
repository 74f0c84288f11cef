"""What a running gateway tells `pml-gateway status`: one small JSON file per gateway under ``<data_dir>/run/``.

A gateway replaces its file (written aside, then renamed) whenever something `status` shows changes: a server's
state or tools, the index opening or failing. `status` reads the files of the gateways still alive (the pid and
the process start time written there still match) without starting Postgres or loading the model, so it answers
at once with what the gateways see now. The file of a gateway that was killed is ignored, and removed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from gateway.models import ServerStatus

logger = logging.getLogger(__name__)

RUN_DIR = "run"
_START_SLACK_S = 1.0
"""How far a process's start time may be from the one written (clock rounding)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayState:
    """One running gateway as `status` shows it."""

    pid: int
    started: float
    """The process's start time (epoch seconds), to tell it from a later process given the same pid."""
    updated: float
    config: str | None
    database: str | None
    index: str
    """``opening``, ``open`` or ``unavailable: <why>``."""
    model: str | None
    servers: tuple[dict[str, Any], ...] = field(default=())
    unindexed: tuple[str, ...] = ()
    """The servers whose latest listing the index does not hold yet."""


class RunFile:
    """This process's file in ``<data_dir>/run/``."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / RUN_DIR / f"gateway-{os.getpid()}.json"
        self._started: float | None = None

    def write(self, *, config: Path | None, database: str | None, index: str, model: str | None,
              servers: Sequence[ServerStatus], unindexed: Sequence[str] = ()) -> None:
        """Replace the file with this state; a failure to write is logged, never raised (status is a nicety)."""
        if self._started is None:
            self._started = psutil.Process().create_time()
        state = GatewayState(
            pid=os.getpid(), started=self._started, updated=time.time(), config=str(config) if config else None,
            database=database, index=index, model=model,
            servers=tuple({"name": s.name, "state": s.state.value, "tools": s.tool_count, "restarts": s.restarts,
                           "reason": s.reason} for s in servers),
            unindexed=tuple(unindexed),
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            aside = self.path.with_suffix(".tmp")
            aside.write_text(json.dumps(asdict(state)), encoding="utf-8")
            os.replace(aside, self.path)
        except OSError as exc:
            logger.warning("could not write %s for `status`: %s", self.path, exc)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)


def running(data_dir: Path) -> list[GatewayState]:
    """The gateways running on `data_dir` now, oldest first; files left by gateways that died are removed."""
    found = []
    for path in sorted((data_dir / RUN_DIR).glob("gateway-*.json")):
        state = _read(path)
        if state is not None and _alive(state):
            found.append(state)
        elif state is not None:
            with contextlib.suppress(OSError):
                path.unlink()
    return sorted(found, key=lambda s: s.started)


def _read(path: Path) -> GatewayState | None:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return GatewayState(**{**raw, "servers": tuple(raw.get("servers", ())),
                                "unindexed": tuple(raw.get("unindexed", ()))})
    except (OSError, ValueError, TypeError):
        return None  # being replaced, or not ours: skipped


def _alive(state: GatewayState) -> bool:
    try:
        return bool(abs(psutil.Process(state.pid).create_time() - state.started) < _START_SLACK_S)
    except psutil.Error:
        return False
