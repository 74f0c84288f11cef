"""The database of the settings, as every command but `serve` opens it: sharing a running gateway's Postgres."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from gateway.settings import Settings

if TYPE_CHECKING:
    from gateway.db import Database


def database(settings: Settings) -> AbstractAsyncContextManager[Database]:
    """The external Postgres of ``--database-url``, else the embedded one of the data directory; migrated, pooled.

    An embedded Postgres that a running ``serve`` owns is used as it is and left running (a command must not
    have to stop the gateway first). The database package, and with it the Postgres driver, is imported only now:
    `status` of a running gateway never needs it.
    """
    from gateway.db import open_database

    return open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True)


async def user_id(db: Database, username: str) -> str:
    """The id of the user `username`, or an `InvalidRequestError` naming them."""
    from gateway.errors import InvalidRequestError

    user = await db.users.get(username)
    if user is None:
        raise InvalidRequestError(f"no user {username!r} (see `pml-gateway users list`)", field="username")
    return user.id
