"""Users' own servers: one instance per (user, server), started on first use, stopped when idle, apart."""

from __future__ import annotations

from pathlib import Path

import anyio
import psutil
import pytest

from gateway.config import ServerSpec
from gateway.downstream.user_servers import UserServers
from gateway.errors import ServerUnavailableError, UnknownToolError
from tests.eventually import eventually

from .support import notes, text_of

pytestmark = pytest.mark.anyio


def notes_processes(user: str) -> list[psutil.Process]:
    found = []
    for process in psutil.Process().children(recursive=True):
        try:
            if process.environ().get("NOTES_FILE", "").endswith(f"{user}.json"):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


async def test_each_user_gets_an_instance_on_first_use_that_stops_when_idle_and_starts_again(
    tmp_path: Path,
) -> None:
    specs = {("alice", "notes"): notes(tmp_path / "alice.json"), ("bob", "notes"): notes(tmp_path / "bob.json")}
    resolved: list[tuple[str, str]] = []

    async def resolve(user: str, name: str) -> ServerSpec | None:
        resolved.append((user, name))
        return specs.get((user, name))

    servers = UserServers(resolve=resolve, idle_s=1.0)
    async with anyio.create_task_group() as tg:
        await tg.start(servers.run)
        assert notes_processes("alice") == []
        await servers.call_tool("alice", "notes", "write_note", {"title": "t", "text": "alice's"}, timeout_s=30)
        await servers.call_tool("bob", "notes", "write_note", {"title": "t", "text": "bob's"}, timeout_s=30)
        read = await servers.call_tool("alice", "notes", "read_note", {"title": "t"}, timeout_s=30)
        assert text_of(read) == "alice's" and len(notes_processes("alice")) == 1 and len(notes_processes("bob")) == 1
        assert set(servers.running("alice")) == {"notes"} and "read_note" in [t.name for t in
                                                                              servers.running("alice")["notes"]]
        with pytest.raises(UnknownToolError, match="no server 'other'"):
            await servers.ensure("alice", "other")
        await eventually(lambda: not notes_processes("alice") and not servers.running("alice"), timeout_s=20,
                         interval_s=0.1, what="alice's idle instance stopped")
        again = await servers.call_tool("alice", "notes", "read_note", {"title": "t"}, timeout_s=30)
        assert text_of(again) == "alice's" and resolved.count(("alice", "notes")) == 2  # resolved anew: new secrets
        tg.cancel_scope.cancel()
    assert notes_processes("alice") == [] and notes_processes("bob") == []


async def test_a_users_server_that_cannot_start_is_refused_at_once_with_its_reason(tmp_path: Path) -> None:
    async def resolve(user: str, name: str) -> ServerSpec | None:
        return ServerSpec(name=name, command=str(tmp_path / "no-such-command"))

    servers = UserServers(resolve=resolve)
    async with anyio.create_task_group() as tg:
        await tg.start(servers.run)
        with anyio.fail_after(15):  # not START_WAIT_S: a failed start is known at once
            with pytest.raises(ServerUnavailableError, match="your server 'broken' is failed"):
                await servers.ensure("alice", "broken")
        tg.cancel_scope.cancel()
