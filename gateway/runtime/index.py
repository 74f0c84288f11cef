"""The database side of the gateway: opened in the background, tried again while Postgres cannot be reached, and
what is offered meanwhile (routes to the listed tools, and a search by their wording alone).

Everything that needs the database comes from one `Services` bundle, built whole once the index is open and
dropped when the database closes; whoever asks before then waits (bounded) or is told why it cannot be had.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
import anyio.to_thread

from gateway.backoff import Backoff
from gateway.db import open_database
from gateway.embed import load_embedder
from gateway.errors import DatabaseError, DatabaseUnavailableError, GatewayError
from gateway.models import ServerStatus
from gateway.ports import Embedder
from gateway.runtime.services import Services, Shared, open_services, start_background
from gateway.services import SearchService

logger = logging.getLogger(__name__)

READY_TIMEOUT_S = 60.0
OPEN_RETRY = Backoff(base_s=1.0, cap_s=30.0)


class Index:
    """The index and the services over it, for the life of the runtime."""

    def __init__(self, shared: Shared, *, on_change: Callable[[], None]) -> None:
        """`on_change` is called whenever the index opens or fails, or the search by wording opens."""
        self._shared = shared
        self._on_change = on_change
        self.ready = anyio.Event()
        """Set once the index opened, or failed for a reason that needs the user."""
        self.failure: str | None = None
        self.open: Services | None = None
        self.standby: SearchService | None = None
        """Search by wording while the index has never been opened (the database not reached yet)."""
        self.embedder: Embedder | None = None

    async def keep_open(self) -> None:
        """Open the index and serve from it until cancelled; a Postgres that cannot be reached is tried again
        (`OPEN_RETRY`), other failures (a missing extension, a failed migration) are not: they need the user."""
        failures = 0
        while True:
            unreachable = False
            try:
                await self._serve()
            except* DatabaseUnavailableError as failed:
                self._fail(f"{_first_leaf(failed)} (the gateway keeps trying to reach it)")
                unreachable = True
            except* GatewayError as failed:
                self._fail(str(_first_leaf(failed)))
            if not unreachable:
                await anyio.sleep_forever()
            if self.standby is None:
                await self._open_standby()
            failures += 1
            logger.info("trying to open the tool index again in %.0f s", OPEN_RETRY.delay(failures))
            await anyio.sleep(OPEN_RETRY.delay(failures))

    async def services(self) -> Services:
        """The services, once the index is open (waiting at most `READY_TIMEOUT_S`); else why they are not."""
        with anyio.move_on_after(READY_TIMEOUT_S):
            await self.ready.wait()
        if self.failure is not None:
            raise DatabaseError(f"the tool index is not available: {self.failure}")
        if self.open is None:
            raise DatabaseError(f"the tool index is still starting after {READY_TIMEOUT_S:.0f} s; retry shortly")
        return self.open

    def state(self) -> str:
        """``open``, ``opening`` or ``unavailable: <why>``."""
        return "open" if self.open is not None else f"unavailable: {self.failure}" if self.failure else "opening"

    def record(self, status: ServerStatus) -> None:
        """Keep a server's new state in the database, in the background, when it is open."""
        if (services := self.open) is not None:
            services.tg.start_soon(_record_status, services, status)

    async def _serve(self) -> None:
        shared, settings = self._shared, self._shared.settings
        async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
            try:
                # What uses the database runs in this group, so that a shutdown cancels it and waits for
                # it (an embedding batch ending in its thread, a last write) before the pool closes.
                async with anyio.create_task_group() as with_db:
                    services = await open_services(db, await self.load_embedder(), shared, with_db)
                    self.open, self.failure, self.standby = services, None, None
                    self.ready.set()
                    self._on_change()
                    logger.info("index ready (%s, model %s)", db.location, services.embedder.model_id)
                    for status in shared.supervisor.statuses():  # those that changed before the index opened
                        self.record(status)
                    await start_background(services, shared)
                    await anyio.sleep_forever()
            finally:
                self.open = None  # late callbacks (a server stopping) start nothing here
                await db.tools.record_stopped(shared.supervisor.statuses())
                await shared.telemetry.close(db.learning)

    async def _open_standby(self) -> None:
        try:
            embedder = await self.load_embedder()
        except GatewayError:
            logger.exception("no search by wording while the database is away: the embedding model did not load")
            return
        catalog = self._shared.catalog
        standby = SearchService(index=None, embedder=embedder, limiter=self._shared.limiter,
                                statuses=self._shared.supervisor.statuses, servers=catalog.servers)
        await standby.set_tools(catalog.known.values())
        self.standby = standby  # from here on, servers listing their tools update it
        await standby.set_tools(catalog.known.values())  # those listed while it was built (else a no-op)
        self._on_change()

    async def load_embedder(self) -> Embedder:
        if self.embedder is None:
            settings = self._shared.settings
            self.embedder = await anyio.to_thread.run_sync(
                lambda: load_embedder(settings.model_dir, threads=settings.embed_threads))
        return self.embedder

    def _fail(self, reason: str) -> None:
        logger.error("the tool index could not be opened: %s", reason)
        self.failure = reason
        self.ready.set()
        self._on_change()


async def _record_status(services: Services, status: ServerStatus) -> None:
    try:
        await services.db.tools.record_server_status(status)
    except GatewayError as exc:
        logger.warning("could not record the status of %s: %s", status.name, exc,
                       exc_info=not isinstance(exc, DatabaseUnavailableError))


def _first_leaf(group: BaseExceptionGroup[GatewayError]) -> GatewayError:
    """The first exception of a (possibly nested) group, for a one-line reason."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup):
        found = found.exceptions[0]
    assert isinstance(found, GatewayError)
    return found
