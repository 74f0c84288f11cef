"""The Protocols the use cases are written against; the I/O layers (db, embed, downstream) implement them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

import mcp_types as types
import numpy as np
from numpy.typing import NDArray

from gateway.models import EpisodicEvent, IndexReport, JsonObject, SearchHit, ServerStatus, ToolDef, ToolOutput

Vector = Sequence[float] | NDArray[np.float32]
"""An embedding: a numpy row as the embedder returns it, or any sequence of floats."""


class Embedder(Protocol):
    """Turns texts into L2-normalised vectors. CPU-bound: callers run it off the event loop."""

    @property
    def model_id(self) -> str: ...

    @property
    def dimensions(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> NDArray[np.float32]:
        """One row per text, shape ``(len(texts), dimensions)``, each row of unit length."""
        ...


class PendingEmbedding(Protocol):
    """A tool whose stored embedding is missing, stale, or from another model."""

    tool_id: str
    text: str
    text_hash: str


class ToolIndex(Protocol):
    """The persisted tool index (`tool_schema` + `tool_embedding`)."""

    async def sync_server(self, server: str, tools: Sequence[ToolDef]) -> IndexReport:
        """Upsert a server's tools and delete the ones it no longer lists (embeddings come later)."""
        ...

    async def pending_embeddings(self, model_id: str, *, server: str | None = None) -> Sequence[PendingEmbedding]:
        """Tools whose `name | description` changed since embedded, or were embedded by another model."""
        ...

    async def save_embeddings(self, model_id: str, rows: Sequence[tuple[str, Vector, str]]) -> None:
        """Store ``(tool_id, vector, text_hash)`` rows computed by `model_id`."""
        ...

    async def search(
        self, query: Vector, *, model_id: str, limit: int, server: str | None = None
    ) -> list[SearchHit]:
        """The `limit` nearest tools by cosine similarity (`score` = `semantic` here)."""
        ...

    async def search_pool(
        self, query: Vector, *, model_id: str, pool: int, extra: Sequence[str] = (), server: str | None = None
    ) -> list[SearchHit]:
        """The `pool` nearest tools plus the `extra` ones (unordered), each with its cosine similarity."""
        ...

    async def embeddings(self, model_id: str) -> tuple[list[str], NDArray[np.float32]]:
        """Every tool embedded by `model_id`: ids, and their vectors as the rows of one matrix."""
        ...

    async def get_tool(self, tool_id: str) -> ToolDef | None: ...

    async def all_tools(self) -> list[ToolDef]: ...

    async def record_server_status(self, status: ServerStatus) -> None: ...

    async def server_statuses(self) -> list[ServerStatus]: ...


ToolsListed = Callable[[str, Sequence[ToolDef]], Awaitable[None]]
"""Called by the supervisor each time a server's tools were listed (connect, restart, list_changed)."""

StatusChanged = Callable[[ServerStatus], Awaitable[None]]
"""Called by the supervisor each time a server changes state."""


class WorkflowStore(Protocol):
    """Submitted DAGs, checkpoints, executions and episodic events (`workflow_*`, `episodic_events`)."""

    async def save_dag(self, workflow_id: str, dag: JsonObject, *, intent: str | None, owner: str | None) -> None:
        """Store a submitted DAG (expires after an hour unless refreshed)."""
        ...

    async def save_checkpoint(self, workflow_id: str, layer: int, state: JsonObject) -> None:
        """Store a state at a layer boundary; keep the last five per workflow."""
        ...

    async def save_task_result(self, workflow_id: str, task_id: str, result: JsonObject) -> None:
        """Store one finished task's result between checkpoints (read back with the next state)."""
        ...

    async def latest_checkpoint(self, workflow_id: str) -> JsonObject | None: ...

    async def unfinished(self) -> list[JsonObject]:
        """Latest states of unexpired workflows cut off while running (to continue after a restart)."""
        ...

    async def record_execution(
        self, *, workflow_id: str, intent: str | None, dag: JsonObject, success: bool,
        execution_time_ms: int, error: str | None,
    ) -> None: ...

    async def record_events(self, events: Sequence[EpisodicEvent]) -> None: ...


class Progress(Protocol):
    """Where a downstream call's ``notifications/progress`` go: the upstream request's own progress."""

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None: ...


class Ask(Protocol):
    """Where a downstream server's ``elicitation/create`` goes: the user, through the upstream request's client."""

    async def __call__(self, params: types.ElicitRequestParams) -> types.ElicitResult: ...


Cancelled = Callable[[], bool]
"""Whether the client cancelled the request being served (not the gateway stopping)."""

ToolCall = Callable[[str, dict[str, Any], float], Awaitable[ToolOutput]]
"""``call(tool_id, arguments, timeout_s)``: run one downstream tool (raises `DownstreamError` subclasses)."""
