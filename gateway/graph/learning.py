"""The edges one workflow run teaches: `dependency` for each `depends_on` pair, `sequence` between layers.

Pure: the learning service turns these into stored edges (new ones `inferred`, counted on each sighting).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise

TaskRow = tuple[str, str, tuple[str, ...]]
"""One task of a run: ``(task_id, tool_id, depends_on)``."""

LearnedEdge = tuple[str, str, str]
"""``(from_tool, to_tool, edge_type)``."""


def workflow_edges(tasks: Sequence[TaskRow], layers: Sequence[Sequence[str]]) -> list[LearnedEdge]:
    """Dependency edges (a dependency's tool -> its dependent's tool) in task order, then sequence edges from
    each tool of layer i to each tool of layer i + 1 (layers hold task ids).

    No self-loops (a tool used by two linked tasks), no duplicates, and no sequence edge for a pair of tools
    already linked by a dependency edge in either direction: the weak edge would only blur the strong one.
    ValueError if a dependency or a layer names an unknown task.
    """
    tool = {task_id: tool_id for task_id, tool_id, _ in tasks}
    dependencies = _unique_pairs((_tool(tool, dep), tool[task_id]) for task_id, _, deps in tasks for dep in deps)
    linked = set(dependencies) | {(b, a) for a, b in dependencies}
    steps = ((_tool(tool, a), _tool(tool, b)) for earlier, later in pairwise(layers) for a in earlier for b in later)
    sequences = [pair for pair in _unique_pairs(steps) if pair not in linked]
    return [(a, b, "dependency") for a, b in dependencies] + [(a, b, "sequence") for a, b in sequences]


def _tool(tool: Mapping[str, str], task_id: str) -> str:
    """The tool of `task_id`, or a ValueError that names it."""
    try:
        return tool[task_id]
    except KeyError:
        raise ValueError(f"unknown task {task_id!r} in the workflow run") from None


def _unique_pairs(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Distinct pairs of distinct tools, in first-seen order."""
    seen: dict[tuple[str, str], None] = {}
    for a, b in pairs:
        if a != b:
            seen.setdefault((a, b), None)
    return list(seen)
