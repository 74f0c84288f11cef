"""The connection pool, with pgvector types registered and search settings applied on each new connection.

psycopg errors met while connecting are translated here, once, into `DatabaseError` with a message that says
what to fix (wrong URL, server down, ``vector`` extension missing). Connections are in autocommit mode: a
single query costs one round trip; stores open ``conn.transaction()`` where they need one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import psycopg_pool
from pgvector.psycopg import register_vector_async
from psycopg.rows import scalar_row

from gateway.db.queries import query
from gateway.errors import DatabaseError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
HNSW_EF_SEARCH = 64
"""Candidates an HNSW scan keeps; iterative scans go on past it when a filter or a larger limit needs more."""
HNSW_ITERATIVE_SCAN = "relaxed_order"
"""pgvector >= 0.8: keep scanning until `limit` rows pass the filters (the caller re-sorts near-ties)."""

Pool = psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 8) -> Pool:
    """An open pool to `url` whose connections know the ``vector`` type; `DatabaseError` if unusable."""
    await _probe(url)
    pool: Pool = psycopg_pool.AsyncConnectionPool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs=connection_kwargs(),
        configure=_configure,
        open=False,
        name="pml-gateway",
    )
    try:
        await pool.open(wait=True, timeout=OPEN_TIMEOUT_S)
    except psycopg_pool.PoolTimeout as exc:
        await pool.close(timeout=CLOSE_TIMEOUT_S)
        raise DatabaseError(f"no connection to {mask_password(url)} within {OPEN_TIMEOUT_S:.0f} s") from exc
    return pool


def connection_kwargs() -> dict[str, Any]:
    """Keyword arguments for every gateway connection (pool, migrations)."""
    return {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S}


async def connect(url: str) -> psycopg.AsyncConnection[Any]:
    """One autocommit connection; a clear `DatabaseError` when the server cannot be reached."""
    try:
        return await psycopg.AsyncConnection.connect(url, **connection_kwargs())
    except psycopg.OperationalError as exc:
        raise DatabaseError(f"cannot reach Postgres at {mask_password(url)}: {_first_line(exc)}") from exc
    except psycopg.ProgrammingError as exc:
        raise DatabaseError(f"invalid database URL {mask_password(url)}: {_first_line(exc)}") from exc


@asynccontextmanager
async def translated(action: str) -> AsyncIterator[None]:
    """Turn psycopg and pool errors raised inside into `DatabaseError` ("`action` failed: ...")."""
    try:
        yield
    except psycopg_pool.PoolTimeout as exc:
        raise DatabaseError(f"{action} failed: no database connection free or reachable ({exc})") from exc
    except psycopg.Error as exc:
        raise DatabaseError(f"{action} failed: {_first_line(exc)}") from exc


def mask_password(url: str) -> str:
    """`url` with its password replaced by ``***`` (URL and ``key=value`` forms)."""
    if "://" not in url:
        return re.sub(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", url)
    parts = urlsplit(url)
    if parts.password is None:
        return re.sub(r"(password=)[^&]*", r"\1***", url)
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc, query=re.sub(r"(password=)[^&]*", r"\1***", parts.query)))


async def _configure(conn: psycopg.AsyncConnection[Any]) -> None:
    """Once per pooled connection: pgvector types, and the search settings (so no query needs a SET)."""
    await register_vector_async(conn)
    settings = {"ef_search": str(HNSW_EF_SEARCH), "iterative_scan": HNSW_ITERATIVE_SCAN}
    await conn.execute(query("session_settings"), settings)


async def _probe(url: str) -> None:
    """Fail fast and clearly: the pool's own retries would only end in a timeout."""
    async with await connect(url) as conn:
        cursor = conn.cursor(row_factory=scalar_row)
        has_vector = await (await cursor.execute(query("vector_type_exists"))).fetchone()
    if not has_vector:
        raise DatabaseError(
            f"the 'vector' extension is not installed in {mask_password(url)}; run the migrations "
            "(CREATE EXTENSION vector needs pgvector on the server and a privileged role)"
        )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
