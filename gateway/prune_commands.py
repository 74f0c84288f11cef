"""The `prune` command: apply the retention policies now and print the rows deleted per table (rich).

The running gateway applies the same policies by itself every few hours (`gateway.runtime`); this is for a
database no gateway serves, or to reclaim space at once. Like ``status`` it shares the embedded Postgres of a
running ``serve``; the deletions go in small batches, so the gateway's own writes are not held up.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from gateway.config import Settings
from gateway.db import open_database


async def prune(settings: Settings) -> int:
    """Delete what the retention policies no longer keep; a table of the rows deleted per table, exit 0."""
    async with open_database(url=settings.database_url, pgdata=settings.pgdata, share_running=True) as db:
        deleted = await db.retention.prune()
    table = Table("table", "rows deleted", title="prune")
    for name, count in deleted.items():
        table.add_row(name, str(count))
    Console().print(table)
    return 0
