"""Value types shared by the layers: tool definitions, search hits, server states, capabilities."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

JsonObject = dict[str, Any]


def tool_id(server: str, name: str) -> str:
    """The gateway-wide id of a downstream tool: ``server:tool``."""
    return f"{server}:{name}"


LOCAL_USER = "local"
"""The one user of a gateway served over stdio, as `created_by` records it (HTTP users are their ids)."""
CAPABILITY_PREFIX = "capability:"
"""A capability's node in the learned graph is ``capability:<capability_records.id>``."""


def node_id(capability_id: uuid.UUID) -> str:
    """A capability's node in the learned graph: ``capability:<capability_records.id>``, never the pattern's id."""
    return f"{CAPABILITY_PREFIX}{capability_id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolDef:
    """A downstream tool as its server lists it."""

    server: str
    name: str
    description: str = ""
    input_schema: JsonObject = field(default_factory=lambda: {"type": "object"})
    output_schema: JsonObject | None = None
    annotations: JsonObject | None = None
    title: str | None = None
    """The server's display title (MCP ``Tool.title``), forwarded as given."""

    @property
    def tool_id(self) -> str:
        return tool_id(self.server, self.name)

    @property
    def display_title(self) -> str | None:
        """`title`, else ``annotations.title`` (the MCP display precedence before the name); None if neither."""
        if self.title and self.title.strip():
            return self.title.strip()
        given = (self.annotations or {}).get("title")
        return given.strip() if isinstance(given, str) and given.strip() else None

    @property
    def embed_text(self) -> str:
        """The text that is embedded and word-matched: ``name | server server: description`` (behaviour.md section
        2, with the server's name: a request says "remember" where the memory server's tools say "entities"),
        with the display title, when the server gives one, before it: ``name | Title. server server: ...``. A tool
        of no named server (an evaluation catalog that names none) goes without."""
        title = self.display_title
        head = f"{self.name} | {title}." if title and title != self.name else f"{self.name} |"
        context = f" {self.server} server:" if self.server else ""
        return f"{head}{context} {self.description}".strip()


@dataclass(frozen=True, slots=True, kw_only=True)
class SearchHit:
    """One ranked tool of a search."""

    tool_id: str
    server: str
    name: str
    description: str
    input_schema: JsonObject
    score: float
    semantic: float
    annotations: JsonObject | None = None
    title: str | None = None
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()


class ServerState(enum.StrEnum):
    """Where a downstream server's owner task stands."""

    STARTING = "starting"
    RUNNING = "running"
    RESTARTING = "restarting"
    FAILED = "failed"
    DISABLED = "disabled"
    STOPPED = "stopped"


@dataclass(frozen=True, slots=True, kw_only=True)
class ServerStatus:
    """A snapshot of one downstream server for `status` and search metadata."""

    name: str
    state: ServerState
    reason: str | None = None
    tool_count: int = 0
    restarts: int = 0
    pid: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class IndexReport:
    """What one sync of a server's tools changed in the index."""

    server: str
    tools: int
    added: int = 0
    changed: int = 0
    removed: int = 0
    embedded: int = 0


EMPTY_OBJECT: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolOutput:
    """What a downstream tool answered, reduced to what a workflow needs."""

    is_error: bool
    text: str
    structured: Any | None = None
    cached: bool = False
    """Answered from a capability's result cache rather than by running it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class EpisodicEvent:
    """One event of a workflow's episodic memory (`episodic_events`)."""

    workflow_id: str
    event_type: str
    data: JsonObject
    task_id: str | None = None
    context_hash: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class StoredPrior:
    """A fitted tool prior as stored: weights ``(dimensions + 1) x len(tools)`` (the last row is the bias), the
    intents it learned from (`samples`) and how many were remembered when it was fitted (`intents`)."""

    tools: tuple[str, ...]
    weights: NDArray[np.float64]
    samples: int
    intents: int


SUGGESTION_DEFAULT = 0.70
"""Where the adaptive suggestion threshold starts."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """One context's adaptive thresholds: the suggestion threshold and the window of outcomes that moves it."""

    suggestion: float = SUGGESTION_DEFAULT
    samples: int = 0
    outcomes: tuple[str, ...] = field(default_factory=tuple)


@dataclass(frozen=True, slots=True, kw_only=True)
class Capability:
    """A learned capability as stored: its names, its pattern's statistics and definition (one row of
    ``capability_records`` with its ``workflow_pattern``, built by column name)."""

    id: uuid.UUID
    org: str
    project: str
    namespace: str
    action: str
    hash: str
    fqdn: str
    display_name: str
    pattern_id: uuid.UUID
    pattern_hash: str
    usage_count: int
    success_count: int
    success_rate: float
    avg_duration_ms: int
    tools: list[str]
    document: JsonObject
    parameters_schema: JsonObject | None
    cache_config: JsonObject
    description: str | None
    tags: list[str]
    created_at: datetime
    updated_at: datetime | None
    created_by: str | None = None
    visibility: str = "private"
    renamed: bool = False
    """Whether a user ever gave it another name than the one it was learned with."""

    @property
    def node_id(self) -> str:
        """The capability's node in the learned graph."""
        return node_id(self.id)


@dataclass(frozen=True, slots=True, kw_only=True)
class Sealed:
    """A secret at rest (`gateway.vault`): the master key id, the wrapped data key, the nonce and the ciphertext
    (with its tag)."""

    key_id: str
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes
