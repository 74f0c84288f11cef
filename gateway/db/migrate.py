"""The migration runner: numbered, forward-only ``NNNN_name.sql`` files, each applied once, in order.

Runs under a session advisory lock, so gateways starting together apply each file once. Each file runs in its
own transaction together with its row in ``schema_migrations``: a failing file raises `MigrationError` naming
the file and Postgres' message, and leaves nothing of itself behind. A recorded file whose checksum changed
is reported with a warning, never re-applied.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, LiteralString

import psycopg
from psycopg.rows import class_row

import gateway
from gateway.db.pool import connect
from gateway.db.queries import query
from gateway.errors import MigrationError

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(gateway.__file__).parent.parent / "migrations"
LOCK_TIMEOUT = "60s"
"""How long a gateway waits for another one's migrations (Postgres ``lock_timeout`` syntax)."""
_LOCK_KEY = 0x706D6C5F6D696772  # "pml_migr": this runner's advisory lock id
_FILE_RE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")

Connection = psycopg.AsyncConnection[Any]


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    path: Path
    checksum: str


@dataclass(frozen=True, slots=True)
class _Applied:
    version: int
    name: str
    checksum: str


async def migrate(conn_or_url: Connection | str, migrations_dir: Path | None = None) -> list[str]:
    """Apply the pending migrations; the names (``0001_tool_index``) of those applied now."""
    migrations = discover(migrations_dir or MIGRATIONS_DIR)
    async with _connection(conn_or_url) as conn, _locked(conn):
        try:
            applied = await _applied(conn)
        except psycopg.Error as exc:
            raise MigrationError(f"cannot read schema_migrations: {exc}") from exc
        done: list[str] = []
        for migration in migrations:
            if migration.version in applied:
                _check_unchanged(migration, applied[migration.version])
                continue
            await _apply(conn, migration)
            done.append(migration.name)
    return done


def discover(directory: Path) -> list[Migration]:
    """The migration files of `directory`, by version; a malformed name or a duplicate version is an error."""
    migrations: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNNN_name.sql")
        version = int(match.group(1))
        if version in migrations:
            raise MigrationError(f"{path}: version {version} is also used by {migrations[version].path.name}")
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        migrations[version] = Migration(version, path.stem, path, checksum)
    return [migrations[v] for v in sorted(migrations)]


async def _applied(conn: Connection) -> dict[int, _Applied]:
    await conn.execute(query("create_schema_migrations"))
    cursor = conn.cursor(row_factory=class_row(_Applied))
    rows = await (await cursor.execute(query("applied_migrations"))).fetchall()
    return {row.version: row for row in rows}


async def _apply(conn: Connection, migration: Migration) -> None:
    sql_text: LiteralString = migration.path.read_text(encoding="utf-8")  # a trusted file, like code
    params = {"version": migration.version, "name": migration.name, "checksum": migration.checksum}
    try:
        async with conn.transaction():
            await conn.execute(sql_text)
            await conn.execute(query("record_migration"), params)
    except psycopg.Error as exc:
        message = (exc.diag.message_primary if isinstance(exc, psycopg.DatabaseError) else None) or str(exc)
        raise MigrationError(f"migration {migration.path.name} failed: {message}") from exc
    logger.info("applied migration %s", migration.name)


def _check_unchanged(migration: Migration, applied: _Applied) -> None:
    if applied.checksum != migration.checksum:
        logger.warning(
            "migration %s changed since it was applied (as %s); edits to applied migrations are ignored, "
            "add a new migration instead",
            migration.path.name,
            applied.name,
        )


@asynccontextmanager
async def _connection(conn_or_url: Connection | str) -> AsyncIterator[Connection]:
    if isinstance(conn_or_url, str):
        async with await connect(conn_or_url) as conn:
            yield conn
        return
    autocommit = conn_or_url.autocommit
    await conn_or_url.set_autocommit(True)  # each file commits on its own
    try:
        yield conn_or_url
    finally:
        await conn_or_url.set_autocommit(autocommit)


@asynccontextmanager
async def _locked(conn: Connection) -> AsyncIterator[None]:
    """A session advisory lock, taken in a transaction so that its lock_timeout stays local to it."""
    try:
        async with conn.transaction():
            await conn.execute(query("lock_timeout"), {"timeout": LOCK_TIMEOUT})
            await conn.execute(query("migration_lock"), {"key": _LOCK_KEY})
    except psycopg.Error as exc:
        raise MigrationError(f"could not take the migration lock within {LOCK_TIMEOUT}: {exc}") from exc
    try:
        yield
    finally:
        if not conn.closed:
            await conn.execute(query("migration_unlock"), {"key": _LOCK_KEY})
