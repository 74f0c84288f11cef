"""The connection pool, with pgvector types registered and search settings applied on each new connection.

psycopg errors met while connecting are translated here, once, into `DatabaseError` with a message that says
what to fix (wrong URL, server down, ``vector`` extension missing). Connections are in autocommit mode: a
single query costs one round trip; stores open ``conn.transaction()`` where they need one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import anyio
import psycopg
import psycopg_pool
from pgvector.psycopg import register_vector_async
from psycopg.rows import scalar_row

from gateway.db import jsonb
from gateway.db.queries import query
from gateway.errors import DatabaseError, DatabaseInputError, DatabaseUnavailableError

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 5
OPEN_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0
HNSW_EF_SEARCH = 64
"""Candidates an HNSW scan keeps; iterative scans go on past it when a filter or a larger limit needs more."""
HNSW_ITERATIVE_SCAN = "relaxed_order"
"""pgvector >= 0.8: keep scanning until `limit` rows pass the filters (the caller re-sorts near-ties)."""

RECHECK_S = 1.0
"""While Postgres is unreachable, at most one call per this many seconds tries to reach it; the others fail at once."""
RECHECK_CONNECT_TIMEOUT_S = 2
WAIT_SLICE_S = 0.5
"""A call waiting for a pooled connection looks up from its wait this often (to learn of an outage)."""
QUERY_DEADLINE_S = 10.0
"""The longest a pooled connection may be held, waiting included: a Postgres that hangs (stopped, not refusing)
then makes a call fail as an outage instead of waiting as long as it hangs."""
BULK_DEADLINE_S = 120.0
"""The same for the few bulk writes (a whole server's tools and their embeddings) and pruning."""
STATEMENT_TIMEOUT_MS = 60_000
"""Postgres's own bound on one statement of a pooled session (it also ends what a client gave up on)."""
RECONNECT_TIMEOUT_S = 10.0
"""How long the pool itself keeps retrying a lost connection (psycopg_pool's default, 5 minutes, backs off so far
that a pool would stay empty for a minute after Postgres is back); a call's recheck takes over after it."""


@dataclass(frozen=True, slots=True)
class Outage:
    since: float
    """Wall-clock time (``time.time()``) when Postgres was found unreachable."""
    reason: str


class Pool(psycopg_pool.AsyncConnectionPool[psycopg.AsyncConnection[Any]]):
    """The connection pool, failing fast while Postgres is unreachable.

    A plain pool makes every caller wait out its 30 s timeout for a connection that cannot come. Here a lost
    connection (one returned broken) or a wait that timed out makes the next call check, with one fresh
    connection, whether Postgres answers. If it does not, that call and every call after it fail at once with
    `DatabaseUnavailableError`, and one call per `RECHECK_S` checks again (starting the embedded server again first
    when it has died, see `revive`); the first check that connects ends the outage, drops the broken connections
    and lets the pool fill again.
    """

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self._url = url
        self.revive: Callable[[], Awaitable[bool]] | None = None
        """Set by the owner of an embedded server: start it again if it died (True if it did)."""
        self._outage: Outage | None = None
        self._suspect = False
        self._verdict: anyio.Event | None = None
        self._next_check = 0.0

    @property
    def outage(self) -> Outage | None:
        """Since when and why Postgres is unreachable; None while it answers."""
        return self._outage

    async def getconn(self, timeout: float | None = None) -> psycopg.AsyncConnection[Any]:  # noqa: ASYNC109
        """A connection, waiting up to `timeout` (the pool's) in slices of `WAIT_SLICE_S`: a call that waits longer
        than a slice has Postgres checked, so calls already waiting when it goes away learn it within a second
        or so instead of at the end of their wait."""
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait
        while True:
            if self._suspect or self._outage is not None:
                await self._recheck()
            left = deadline - time.monotonic()
            try:
                return await super().getconn(max(0.001, min(left, WAIT_SLICE_S)))
            except psycopg_pool.PoolTimeout:
                self._suspect = True
                if left <= WAIT_SLICE_S:
                    raise psycopg_pool.PoolTimeout(f"couldn't get a connection after {wait:.2f} sec") from None

    @asynccontextmanager
    async def connection(
        self, timeout: float | None = None, *, deadline_s: float = QUERY_DEADLINE_S  # noqa: ASYNC109
    ) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection, for at most `deadline_s` (waiting for it included). Past the deadline the work is
        cancelled, Postgres is suspected (the next call checks it), and `DatabaseUnavailableError` is raised."""
        try:
            with anyio.fail_after(deadline_s) as scope:
                async with super().connection(timeout) as conn:
                    yield conn
        except TimeoutError:
            if not scope.cancelled_caught:
                raise
            self._suspect = True
            raise DatabaseUnavailableError(f"Postgres did not answer within {deadline_s:g} s") from None

    async def putconn(self, conn: psycopg.AsyncConnection[Any]) -> None:
        if conn.broken:
            self._suspect = True
        await super().putconn(conn)

    async def _recheck(self) -> None:
        """Connect once (if no other call is checking and the last check is `RECHECK_S` old); raise while down.

        Calls that come while the first check of a suspected outage runs wait for its verdict (else they would
        wait out the pool's timeout); during a known outage they fail at once.
        """
        if (verdict := self._verdict) is not None:
            if self._outage is None:
                await verdict.wait()
            if self._outage is not None:
                raise DatabaseUnavailableError(self._described(self._outage))
            return
        if time.monotonic() < self._next_check:
            if self._outage is not None:
                raise DatabaseUnavailableError(self._described(self._outage))
            return
        self._verdict = verdict = anyio.Event()
        try:
            reason = await _unreachable(self._url)
            if reason is not None and self.revive is not None and await self._revived():
                reason = await _unreachable(self._url)
            await self._judge(reason)
        finally:
            self._verdict = None
            self._next_check = time.monotonic() + RECHECK_S
            verdict.set()  # after the verdict is recorded: the waiting calls read it
        if self._outage is not None:
            raise DatabaseUnavailableError(self._described(self._outage))

    async def _judge(self, reason: str | None) -> None:
        """Record what a check found: an outage beginning (`reason`), going on, or over (None)."""
        if reason is None:
            self._suspect = False
            if self._outage is not None:
                logger.warning("Postgres at %s answers again after %.0f s", mask_password(self._url),
                               time.time() - self._outage.since)
                self._outage = None
                await self.check()  # drop the connections the outage broke; refill the pool now
        elif self._outage is None:
            self._outage = Outage(since=time.time(), reason=reason)
            logger.error("Postgres at %s is unreachable (%s); database calls fail at once until it answers again "
                         "(checked every %.0f s)", mask_password(self._url), reason, RECHECK_S)

    async def _revived(self) -> bool:
        assert self.revive is not None
        try:
            return await self.revive()
        except DatabaseError as exc:  # it may start at the next check (its old backends still exiting, say)
            logger.error("starting the embedded Postgres again failed: %s", exc)
            return False

    @staticmethod
    def _described(outage: Outage) -> str:
        since = datetime.fromtimestamp(outage.since, tz=UTC).strftime("%H:%M:%S UTC")
        return (f"the database is unreachable since {since} ({outage.reason}); the gateway checks again every "
                f"{RECHECK_S:.0f} s")


async def _unreachable(url: str) -> str | None:
    """Why a fresh connection to `url` fails, or None when Postgres answers."""
    try:
        conn = await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=RECHECK_CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        return _first_line(exc)
    await conn.close()
    return None


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 8) -> Pool:
    """An open pool to `url` whose connections know the ``vector`` type; `DatabaseError` if unusable."""
    await _probe(url)
    pool = Pool(
        url,
        min_size=min_size,
        max_size=max_size,
        kwargs=connection_kwargs(),
        configure=_configure,
        open=False,
        name="pml-gateway",
        reconnect_timeout=RECONNECT_TIMEOUT_S,
    )
    try:
        await pool.open(wait=True, timeout=OPEN_TIMEOUT_S)
    except psycopg_pool.PoolTimeout as exc:
        await pool.close(timeout=CLOSE_TIMEOUT_S)
        raise DatabaseUnavailableError(f"no connection to {mask_password(url)} within {OPEN_TIMEOUT_S:.0f} s") from exc
    return pool


def connection_kwargs() -> dict[str, Any]:
    """Keyword arguments for every gateway connection (pool, migrations)."""
    return {"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S}


async def connect(url: str) -> psycopg.AsyncConnection[Any]:
    """One autocommit connection; a clear `DatabaseError` when the server cannot be reached."""
    try:
        conn = await psycopg.AsyncConnection.connect(url, **connection_kwargs())
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailableError(f"cannot reach Postgres at {mask_password(url)}: {_first_line(exc)}") from exc
    except psycopg.ProgrammingError as exc:
        raise DatabaseError(f"invalid database URL {mask_password(url)}: {_first_line(exc)}") from exc
    jsonb.install(conn)
    return conn


@asynccontextmanager
async def translated(action: str) -> AsyncIterator[None]:
    """Turn psycopg and pool errors raised inside into `DatabaseError` ("`action` failed: ..."); those that may
    pass when Postgres is back (no connection, a lost one, a server shutting down) into `DatabaseUnavailableError`;
    a value Postgres refuses into `DatabaseInputError`."""
    try:
        yield
    except DatabaseUnavailableError as exc:
        raise DatabaseUnavailableError(f"{action} failed: {exc}") from None
    except psycopg_pool.PoolClosed as exc:  # the gateway is shutting down: nothing to wait for
        raise DatabaseError(f"{action} failed: {_first_line(exc)}") from exc
    except psycopg_pool.PoolTimeout as exc:
        raise DatabaseUnavailableError(f"{action} failed: no database connection free or reachable ({exc})") from exc
    except psycopg.OperationalError as exc:  # the connection, or the server, went away (or is out of resources)
        raise DatabaseUnavailableError(f"{action} failed: {_first_line(exc)}") from exc
    except psycopg.DataError as exc:  # a value the request carried (out of range, NUL): the same request fails again
        raise DatabaseInputError(f"{action} failed: {_first_line(exc)}") from exc
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
    """Once per pooled connection: pgvector types, NUL-safe JSON, and the session settings (so no query needs a
    SET)."""
    await register_vector_async(conn)
    jsonb.install(conn)
    settings = {"ef_search": str(HNSW_EF_SEARCH), "iterative_scan": HNSW_ITERATIVE_SCAN,
                "statement_timeout": str(STATEMENT_TIMEOUT_MS)}
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
