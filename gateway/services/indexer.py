"""Keeps the tool index in step with the downstream servers: sync schemas, embed what changed.

Embedding is CPU work: it runs in a worker thread under a small limiter, in batches, so the event loop
keeps answering the client while a catalog of thousands of tools is embedded.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import anyio
import anyio.to_thread

from gateway.models import IndexReport, ToolDef
from gateway.ports import Embedder, ToolIndex, Vector

logger = logging.getLogger(__name__)

EMBED_BATCH = 64

Progress = Callable[[int, int], None]
"""``progress(done, total)`` after each embedded batch."""


class Indexer:
    """Syncs a server's tools into the index and embeds the new or changed ones."""

    def __init__(self, *, index: ToolIndex, embedder: Embedder, limiter: anyio.CapacityLimiter) -> None:
        self._index = index
        self._embedder = embedder
        self._limiter = limiter
        self._locks: dict[str, anyio.Lock] = {}

    async def sync(self, server: str, tools: Sequence[ToolDef], progress: Progress | None = None) -> IndexReport:
        """Store `tools` as the full list of `server`'s tools, then embed what needs it."""
        async with self._locks.setdefault(server, anyio.Lock()):
            report = await self._index.sync_server(server, tools)
            embedded = await self.embed_pending(server=server, progress=progress)
        logger.info(
            "indexed %s: %d tools (%d added, %d changed, %d removed, %d embedded)",
            server, report.tools, report.added, report.changed, report.removed, embedded,
        )
        return IndexReport(
            server=server, tools=report.tools, added=report.added, changed=report.changed,
            removed=report.removed, embedded=embedded,
        )

    async def embed_pending(self, *, server: str | None = None, progress: Progress | None = None) -> int:
        """Embed every tool whose text changed or whose embedding came from another model.

        The texts go shortest first, so each batch is of like lengths and pads little; a batch is saved while the
        next one is embedded (the model's threads and Postgres work side by side).
        """
        pending = sorted(await self._index.pending_embeddings(self._embedder.model_id, server=server),
                         key=lambda p: len(p.text))
        send, receive = anyio.create_memory_object_stream[list[tuple[str, Vector, str]]](1)
        done = 0

        async def save() -> None:
            nonlocal done
            async with receive:
                async for rows in receive:
                    await self._index.save_embeddings(self._embedder.model_id, rows)
                    done += len(rows)
                    if progress is not None:
                        progress(done, len(pending))

        try:
            async with anyio.create_task_group() as group:
                group.start_soon(save)
                async with send:
                    for start in range(0, len(pending), EMBED_BATCH):
                        batch = pending[start : start + EMBED_BATCH]
                        vectors = await anyio.to_thread.run_sync(
                            self._embedder.embed, [p.text for p in batch], limiter=self._limiter
                        )
                        await send.send([(p.tool_id, vectors[i], p.text_hash) for i, p in enumerate(batch)])
        except BaseExceptionGroup as group:  # the callers handle our errors (DatabaseUnavailableError...), not groups
            raise _sole(group) from None
        return len(pending)


def _sole(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one error of a (nested) group of one, else the group itself."""
    found: BaseException = group
    while isinstance(found, BaseExceptionGroup) and len(found.exceptions) == 1:
        found = found.exceptions[0]
    return found
