"""Servers crash, fail to start and get stopped: the supervisor restarts, reports, leaves nothing behind."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import pytest

from gateway.config import ServerSpec
from gateway.errors import ServerCrashedError, ServerUnavailableError
from gateway.models import ServerState

from .support import SETTLE_S, Recorder, faulty, notes, supervising, text_of, time_server

pytestmark = pytest.mark.anyio


def alive(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def command_line(pid: int | None) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().replace("\0", " ")


async def test_a_crashed_server_fails_the_calls_in_flight_and_the_next_call_succeeds() -> None:
    crashed: list[ServerCrashedError] = []
    async with supervising(faulty()) as (supervisor, recorder):

        async def slow_call() -> None:
            with pytest.raises(ServerCrashedError) as caught:
                await supervisor.call_tool("faulty", "sleep", {"ms": 20_000})
            crashed.append(caught.value)

        await supervisor.wait_settled(SETTLE_S)
        first_pid = supervisor.statuses()[0].pid
        assert text_of(await supervisor.call_tool("faulty", "echo", {"text": "a"})) == "a"
        with anyio.fail_after(SETTLE_S):
            async with anyio.create_task_group() as tg:
                tg.start_soon(slow_call)
                with pytest.raises(ServerCrashedError) as caught:
                    await supervisor.call_tool("faulty", "crash", {})
        assert caught.value.server == "faulty"
        assert str(caught.value) == "server 'faulty' exited during the call to 'crash'; it is being restarted"
        assert [e.server for e in crashed] == ["faulty"]
        assert text_of(await supervisor.call_tool("faulty", "count_calls", {})) == "1"
        status = supervisor.statuses()[0]
        assert (status.state, status.restarts) == (ServerState.RUNNING, 1)
        assert status.pid is not None and status.pid != first_pid
        assert first_pid is not None and not alive(first_pid)
        assert recorder.states("faulty") == ["starting", "running", "restarting", "running"]
        assert recorder.listings == ["faulty", "faulty"]


async def test_a_server_with_a_wrong_command_is_failed_with_a_reason_while_the_others_work() -> None:
    wrong = ServerSpec(name="wrong", command="pml-no-such-command", args=("--flag",))
    async with supervising(wrong, faulty(), restart_base_s=60.0) as (supervisor, recorder):
        await supervisor.wait_settled(SETTLE_S)
        states = {s.name: (s.state, s.reason) for s in supervisor.statuses()}
        assert states == {
            "wrong": (ServerState.FAILED, "command not found: pml-no-such-command"),
            "faulty": (ServerState.RUNNING, None),
        }
        with pytest.raises(ServerUnavailableError, match="command not found: pml-no-such-command") as caught:
            await supervisor.call_tool("wrong", "anything", {})
        assert caught.value.server == "wrong"
        assert text_of(await supervisor.call_tool("faulty", "echo", {"text": "fine"})) == "fine"
        assert recorder.states("wrong") == ["starting", "failed"]


async def test_a_failed_server_is_retried_with_backoff() -> None:
    recorder = Recorder()
    wrong = ServerSpec(name="wrong", command="pml-no-such-command")
    async with supervising(wrong, recorder=recorder, restart_base_s=0.01) as (supervisor, _):
        await recorder.wait_for(lambda: recorder.states("wrong").count(ServerState.FAILED) >= 3)
        assert supervisor.statuses()[0].restarts >= 2


async def test_a_server_that_exits_during_initialize_is_failed_with_its_last_stderr_line() -> None:
    dying = faulty("dying", FAULTY_FAIL_AT_START="no API key in FAULTY_TOKEN")
    async with supervising(dying, restart_base_s=60.0) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        status = supervisor.statuses()[0]
        assert status.state is ServerState.FAILED
        assert status.reason == "exited during initialize: faulty_server: no API key in FAULTY_TOKEN"


async def test_no_child_process_survives_the_supervisor(tmp_path: Path) -> None:
    async with supervising(faulty(), notes(tmp_path / "notes.json"), time_server()) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        pids = {s.name: s.pid for s in supervisor.statuses()}
        assert all(isinstance(pid, int) and alive(pid) for pid in pids.values()), pids
        assert "faulty_server.py" in command_line(pids["faulty"])
    assert [name for name, pid in pids.items() if pid is not None and alive(pid)] == []
    assert {s.state for s in supervisor.statuses()} == {ServerState.STOPPED}
    assert all(s.pid is None for s in supervisor.statuses())
    assert os.getpid() not in pids.values()


async def test_a_call_to_a_restarting_server_waits_only_as_long_as_its_timeout() -> None:
    async with supervising(faulty(), restart_base_s=60.0) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
        with pytest.raises(ServerCrashedError):
            await supervisor.call_tool("faulty", "crash", {})
        started = anyio.current_time()
        with pytest.raises(ServerUnavailableError) as caught:
            await supervisor.call_tool("faulty", "echo", {"text": "x"}, timeout_s=0.3)
        assert anyio.current_time() - started < 2.0
        assert str(caught.value) == "server 'faulty' is still restarting after 0.3 s"


async def test_a_servers_stderr_reaches_ours_under_its_name_and_its_secrets_are_never_logged(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    dying = faulty("dying", FAULTY_FAIL_AT_START="bad token", API_TOKEN="s3cret-value")
    caplog.set_level("DEBUG", logger="gateway")
    async with supervising(dying, restart_base_s=60.0) as (supervisor, _):
        await supervisor.wait_settled(SETTLE_S)
    captured = capsys.readouterr()
    assert "[dying] faulty_server: bad token" in captured.err
    assert captured.out == ""
    assert "API_TOKEN" in caplog.text
    assert "s3cret-value" not in caplog.text + captured.err
