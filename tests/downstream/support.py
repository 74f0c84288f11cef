"""Real downstream servers over stdio (our examples, a paged server, mcp-server-time), a supervisor to run
them, and a recorder of its callbacks that tests wait on with `fail_after` instead of sleeping."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio

from gateway.config import ServerSpec
from gateway.downstream import Supervisor
from gateway.models import ServerState, ServerStatus, ToolDef

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
PYTHON = sys.executable
TIME_SERVER = str(Path(sys.executable).parent / "mcp-server-time")
SETTLE_S = 30.0


def faulty(name: str = "faulty", **env: str) -> ServerSpec:
    return ServerSpec(name=name, command=PYTHON, args=(str(EXAMPLES / "faulty_server.py"),), env=env)


def notes(notes_file: Path, name: str = "notes") -> ServerSpec:
    args = (str(EXAMPLES / "notes_server.py"),)
    return ServerSpec(name=name, command=PYTHON, args=args, env={"NOTES_FILE": str(notes_file)})


def paged(name: str = "paged") -> ServerSpec:
    return ServerSpec(name=name, command=PYTHON, args=(str(Path(__file__).with_name("paged_server.py")),))


def time_server(name: str = "time") -> ServerSpec:
    return ServerSpec(name=name, command=TIME_SERVER, args=("--local-timezone", "UTC"))


class Recorder:
    """Keeps what the supervisor reported; `wait_for` wakes on every report, bounded by `fail_after`."""

    def __init__(self) -> None:
        self.tools: dict[str, list[ToolDef]] = {}
        self.listings: list[str] = []
        self.statuses: list[ServerStatus] = []
        self._news = anyio.Event()

    async def on_tools(self, server: str, tools: Sequence[ToolDef]) -> None:
        self.tools[server] = list(tools)
        self.listings.append(server)
        self._poke()

    async def on_status(self, status: ServerStatus) -> None:
        self.statuses.append(status)
        self._poke()

    def states(self, server: str) -> list[ServerState]:
        return [s.state for s in self.statuses if s.name == server]

    def tool_names(self, server: str) -> list[str]:
        return [tool.name for tool in self.tools.get(server, [])]

    async def wait_for(self, condition: Callable[[], bool], timeout_s: float = SETTLE_S) -> None:
        with anyio.fail_after(timeout_s):
            while not condition():
                await self._news.wait()

    def _poke(self) -> None:
        self._news.set()
        self._news = anyio.Event()


@asynccontextmanager
async def supervising(
    *specs: ServerSpec, recorder: Recorder | None = None, restart_base_s: float = 0.05
) -> AsyncIterator[tuple[Supervisor, Recorder]]:
    """A running supervisor over `specs`, cancelled (and so every process stopped) on the way out.

    Restarts wait `restart_base_s`, doubling up to twice that: long enough to watch, short enough to test.
    """
    recorder = recorder or Recorder()
    supervisor = Supervisor(
        servers=specs,
        on_tools=recorder.on_tools,
        on_status=recorder.on_status,
        restart_base_s=restart_base_s,
        restart_cap_s=2 * restart_base_s,
    )
    async with anyio.create_task_group() as tg:
        await tg.start(supervisor.run)
        yield supervisor, recorder
        tg.cancel_scope.cancel()


def text_of(result: Any) -> str:
    """The text of a tools/call result's first content block."""
    return str(result.content[0].text)
