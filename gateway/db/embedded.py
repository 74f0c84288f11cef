"""An embedded Postgres (with pgvector) owned by one gateway process for its whole life.

`start()` takes an exclusive ``flock`` on ``<data_dir>/gateway.lock`` (a second gateway on the same
directory gets `DataDirLockedError`), initialises the cluster on first use, adopts a postmaster left running
by a gateway that was killed, or launches one listening on a Unix socket only, and returns a libpq URL to
the ``pml`` database. `stop()` asks for a fast shutdown (SIGINT, what ``pg_ctl stop -m fast`` sends), waits
a bounded time, then kills the server's process group; it always releases the lock. All are synchronous:
async callers run them in a worker thread. Under root, Postgres runs as the system user ``embedded_postgres``.

A second gateway on the directory (Claude Desktop and Claude Code both starting one, say) `share()`s the
owner's server instead, and when the owner exits and stops it, `revive()` takes the directory over: it locks
it and starts the server again on the same socket, so the URL its pool holds stays good.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import psutil

from gateway.db import _cluster
from gateway.errors import DatabaseError, DataDirLockedError

logger = logging.getLogger(__name__)

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
KILL_TIMEOUT_S = 5.0
POLL_INTERVAL_S = 0.005
SHARE_POLL_S = 0.1
PORT = 5432
DATABASE = "pml"
SUPERUSER = "postgres"


class EmbeddedPostgres:
    """The Postgres server of one data directory (``pgdata``; its parent holds the lock and the log)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata.expanduser().absolute()
        self._lock_fd: int | None = None
        self._postmaster: psutil.Process | None = None
        self._child: subprocess.Popen[bytes] | None = None
        self._url: str | None = None
        self._shared = False
        self._reviving = threading.Lock()
        """`revive` runs in worker threads, for the pool's checks and for the watch of a shared server's owner."""

    @property
    def location(self) -> str:
        """The data directory, for `status` and logs."""
        return str(self.pgdata)

    @property
    def lock_path(self) -> Path:
        return self.pgdata.parent / "gateway.lock"

    @property
    def log_path(self) -> Path:
        return self.pgdata.parent / "postgres.log"

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while this handle owns a running server."""
        return self._postmaster.pid if self._postmaster is not None else None

    def start(self) -> str:
        """Lock the data directory, init/adopt/launch the server; the URL of the ``pml`` database."""
        if self._url is not None:
            return self._url
        self._lock()
        try:
            user = _cluster.prepare(self.pgdata)
            info = self._adopt()
            if info is None:
                info = self._launch(user)
            base = _url(info, "postgres")
            _cluster.ensure_database(base, DATABASE)
            self._url = _url(info, DATABASE)
        except BaseException:
            self.stop()
            raise
        logger.info("embedded Postgres (pid %s) serving %s", self.pid, self.pgdata)
        return self._url

    def stop(self) -> None:
        """Fast shutdown, bounded; kill if it does not finish. Safe to call more than once."""
        try:
            if self._postmaster is not None:
                _shutdown(self._postmaster, self.log_path)
            if self._child is not None:
                self._child.wait(timeout=KILL_TIMEOUT_S)
        finally:
            self._postmaster = None
            self._child = None
            self._url = None
            self._unlock()

    def share(self) -> str:
        """The URL of the server another gateway runs on this directory, waiting (bounded) while it starts; if
        that gateway is gone meanwhile, this handle starts the server itself. From then on `revive` takes the
        directory over when its owner has stopped the server."""
        deadline = time.monotonic() + START_TIMEOUT_S
        while (url := self.running_url()) is None:
            if not self._locked_elsewhere():
                with contextlib.suppress(DataDirLockedError):
                    return self.start()
            if time.monotonic() >= deadline:
                raise DataDirLockedError(f"another pml-gateway holds {self.pgdata.parent} but its Postgres did not "
                                         f"become ready within {START_TIMEOUT_S:.0f} s; see {self.log_path}")
            time.sleep(SHARE_POLL_S)
        self._shared = True
        return url

    def revive(self) -> bool:
        """Launch the server again when this handle runs it and its postmaster has died (killed, crashed), or
        take the directory over when the gateway whose server this handle shares has stopped it; True if it did.
        The data directory, socket and port are the same, so the URL is too."""
        with self._reviving:
            if self._url is None:
                return self._take_over()
            return self._relaunch()

    def _relaunch(self) -> bool:
        if self._postmaster is None or not _gone(self._postmaster):
            return False
        logger.warning("embedded Postgres (pid %s) has exited; starting it again on %s", self._postmaster.pid,
                       self.pgdata)
        if self._child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._child.wait(timeout=KILL_TIMEOUT_S)  # reap it
        self._postmaster = None
        self._child = None
        info = self._adopt() or self._launch(_cluster.prepare(self.pgdata))
        self._url = _url(info, DATABASE)
        logger.warning("embedded Postgres (pid %s) serving %s again", self.pid, self.pgdata)
        return True

    def _take_over(self) -> bool:
        if not self._shared or self.running_url() is not None:
            return False
        try:
            self.start()
        except DataDirLockedError:
            return False  # its owner is still stopping it: the next check tries again
        self._shared = False
        logger.warning("the gateway that ran Postgres on %s has left; this one runs it now", self.pgdata)
        return True

    def _locked_elsewhere(self) -> bool:
        """Whether another process holds the directory's lock (tried and released at once)."""
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def running_url(self) -> str | None:
        """The URL of a server already up on this directory (another gateway's), else None; takes no lock."""
        info = _read_pidfile(self.pgdata)
        if info is None or info.status != "ready" or not _serves(info.pid, self.pgdata):
            return None
        return _url(info, DATABASE)

    def size_bytes(self) -> int:
        """Bytes used by the data directory on disk."""
        total = 0
        for root, _dirs, files in os.walk(self.pgdata):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_size
                except OSError:
                    continue  # removed while walking (WAL recycling, temp files)
        return total

    def _lock(self) -> None:
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DataDirLockedError(
                f"another pml-gateway (pid {owner}) is using {self.pgdata.parent}; stop it, use another "
                "--data-dir, or share one Postgres with --database-url"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd

    def _unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the only descriptor releases the flock
            self._lock_fd = None

    def _adopt(self) -> _Pidfile | None:
        """The server a killed gateway left running on this directory, once it is ready, else None."""
        info = _read_pidfile(self.pgdata)
        if info is None:
            return None
        if not _serves(info.pid, self.pgdata):
            # Postgres refuses to start while the recorded pid is alive, even when another process reused it.
            logger.info("removing the stale postmaster.pid of %s (pid %s)", self.pgdata, info.pid)
            (self.pgdata / "postmaster.pid").unlink(missing_ok=True)
            return None
        process = psutil.Process(info.pid)
        logger.info("adopting Postgres (pid %s) left running on %s", info.pid, self.pgdata)
        ready = _wait_ready(self.pgdata, process, None, self.log_path)
        if ready is None:
            return None  # it was shutting down and is now gone: launch a fresh one
        self._postmaster = process
        return ready

    def _launch(self, user: _cluster.SystemUser | None) -> _Pidfile:
        socket_dir = _cluster.socket_dir(self.pgdata, user)
        command = _cluster.postgres_command(self.pgdata, socket_dir=socket_dir, port=PORT)
        with _cluster.open_log(self.log_path) as log:
            self._child = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True,
                **_cluster.run_as(user),
            )
        self._postmaster = psutil.Process(self._child.pid)
        ready = _wait_ready(self.pgdata, self._postmaster, self._child, self.log_path)
        if ready is None:
            raise DatabaseError(f"Postgres exited while starting; see its log {self.log_path}")
        return ready


def _url(info: _Pidfile, database: str) -> str:
    host = quote(str(info.socket_dir), safe="")
    return f"postgresql://{SUPERUSER}@/{database}?host={host}&port={info.port}"


@dataclass(frozen=True, slots=True)
class _Pidfile:
    """What a postmaster says about itself in ``postmaster.pid``."""

    pid: int
    port: int
    socket_dir: Path
    status: str


def _read_pidfile(pgdata: Path) -> _Pidfile | None:
    try:
        lines = (pgdata / "postmaster.pid").read_text().splitlines()
    except FileNotFoundError:
        return None
    if len(lines) < 8 or not lines[0].strip().isdigit():
        return None  # still being written by a starting postmaster
    socket_dir = lines[4].strip().split(",")[0]
    return _Pidfile(int(lines[0]), int(lines[3] or PORT), Path(socket_dir), lines[7].strip())


def _serves(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a live postmaster of `pgdata` (Postgres works from inside its data directory)."""
    try:
        process = psutil.Process(pid)
        if process.name() != "postgres" or process.status() == psutil.STATUS_ZOMBIE:
            return False
        return os.path.samefile(process.cwd(), pgdata)
    except psutil.AccessDenied:
        return True  # cannot tell: adopting will fail clearly if it is not ours
    except (psutil.Error, OSError):
        return False


def _gone(process: psutil.Process) -> bool:
    """Exited (a zombie counts: an orphan's reaper may be slow or absent in containers)."""
    try:
        return not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _wait_ready(
    pgdata: Path, process: psutil.Process, child: subprocess.Popen[bytes] | None, log: Path
) -> _Pidfile | None:
    """Poll postmaster.pid until it says ``ready``; None if the server exited first."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if (child is not None and child.poll() is not None) or _gone(process):
            logger.error("Postgres exited while starting; its log is %s", log)
            return None
        info = _read_pidfile(pgdata)
        if info is not None and info.pid == process.pid and info.status == "ready":
            return info
        time.sleep(POLL_INTERVAL_S)
    logger.error("Postgres not ready after %.0f s; its log is %s", START_TIMEOUT_S, log)
    raise DatabaseError(f"Postgres did not become ready within {START_TIMEOUT_S:.0f} s; see its log {log}")


def _shutdown(process: psutil.Process, log: Path) -> None:
    """SIGINT (fast shutdown), then SIGQUIT (immediate), then SIGKILL to the group, each wait bounded."""
    for sig, timeout in ((signal.SIGINT, STOP_TIMEOUT_S), (signal.SIGQUIT, KILL_TIMEOUT_S)):
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(sig)
        if _wait_gone(process, timeout):
            return
        logger.warning("Postgres (pid %s) still up after %s; escalating (%s)", process.pid, sig.name, log)
    with contextlib.suppress(ProcessLookupError, psutil.NoSuchProcess):
        os.killpg(process.pid, signal.SIGKILL)  # launched in its own session: the group is its backends
        process.kill()
    if not _wait_gone(process, KILL_TIMEOUT_S):
        raise DatabaseError(f"Postgres (pid {process.pid}) survived SIGKILL; see its log {log}")


def _wait_gone(process: psutil.Process, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not _gone(process):
        if time.monotonic() >= deadline:
            return False
        time.sleep(POLL_INTERVAL_S)
    return True
