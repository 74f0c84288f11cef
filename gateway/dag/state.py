"""The state of one workflow run, pure: task results, where the run stands, and its JSON form for checkpoints.

A workflow advances layer by layer; `next_layer` is the first layer not yet finished, so a run restored from a
checkpoint continues there and never re-runs a finished task.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from gateway.dag.model import Dag, to_document
from gateway.dag.parse import parse_dag


class TaskStatus(enum.StrEnum):
    OK = "ok"
    ERROR = "error"
    TIMEOUT = "timeout"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


class RunStatus(enum.StrEnum):
    """Where a workflow stands. The first three are pauses or work in progress; the rest are final."""

    RUNNING = "running"
    LAYER_COMPLETE = "layer_complete"
    APPROVAL_REQUIRED = "approval_required"
    COMPLETED = "completed"
    FAILED = "failed"
    ABORTED = "aborted"

    @property
    def final(self) -> bool:
        return self in (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.ABORTED)


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskResult:
    """What one task did. `output` is its value for references (see `output_value`)."""

    id: str
    status: TaskStatus
    layer: int
    output: Any = None
    error: str | None = None
    duration_ms: float = 0.0
    cached: bool = False

    def to_json(self) -> dict[str, Any]:
        doc = {"id": self.id, "status": self.status.value, "layer": self.layer, "output": self.output,
               "error": self.error, "duration_ms": round(self.duration_ms, 3)}
        return {**doc, "cached": True} if self.cached else doc

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> TaskResult:
        return cls(id=doc["id"], status=TaskStatus(doc["status"]), layer=int(doc["layer"]), output=doc.get("output"),
                   error=doc.get("error"), duration_ms=float(doc.get("duration_ms", 0.0)),
                   cached=bool(doc.get("cached", False)))


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkflowState:
    """A workflow run at a layer boundary (what a checkpoint stores)."""

    workflow_id: str
    dag: Dag
    status: RunStatus = RunStatus.RUNNING
    next_layer: int = 0
    results: dict[str, TaskResult] = field(default_factory=dict)
    approved_layers: frozenset[int] = frozenset()
    pending_approval: tuple[str, ...] = ()
    wall_ms: float = 0.0
    owner: str | None = None

    @property
    def done(self) -> bool:
        return self.next_layer >= len(self.dag.layers)

    @property
    def sum_task_ms(self) -> float:
        return sum(r.duration_ms for r in self.results.values())

    def evolve(self, **changes: Any) -> WorkflowState:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "workflow_id": self.workflow_id, "dag": to_document(self.dag), "status": self.status.value,
            "next_layer": self.next_layer, "results": [r.to_json() for r in self.results.values()],
            "approved_layers": sorted(self.approved_layers), "pending_approval": list(self.pending_approval),
            "wall_ms": round(self.wall_ms, 3), "owner": self.owner,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> WorkflowState:
        """Restore a checkpoint; the DAG is re-parsed without schemas (it was validated when submitted)."""
        dag = parse_dag(doc["dag"], tool_schemas=_AnyTool())
        results = [TaskResult.from_json(r) for r in doc.get("results", [])]
        return cls(
            workflow_id=doc["workflow_id"], dag=dag, status=RunStatus(doc["status"]),
            next_layer=int(doc["next_layer"]), results={r.id: r for r in results},
            approved_layers=frozenset(int(x) for x in doc.get("approved_layers", [])),
            pending_approval=tuple(doc.get("pending_approval", [])), wall_ms=float(doc.get("wall_ms", 0.0)),
            owner=doc.get("owner"),
        )


class _AnyTool(dict[str, Any]):
    """A schema map that knows every tool and checks no arguments (for restoring validated DAGs)."""

    def __contains__(self, key: object) -> bool:
        return True

    def get(self, key: str, default: Any = None) -> Any:
        return None

    def __getitem__(self, key: str) -> Any:
        return None
