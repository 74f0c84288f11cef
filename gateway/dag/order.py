"""Ordering tasks by their dependencies: topological layers, and the cycles that make layering impossible.

A graph here is the tasks' ids in submission order plus, for each, the ids it depends on (every one of them
a task of the graph, none the task itself).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

Layers = tuple[tuple[str, ...], ...]


def layers(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> Layers:
    """Layer 0 holds the tasks without dependencies; a task's layer is 1 + the highest layer of its
    dependencies; ids within a layer keep submission order. Raises ValueError if the graph has a cycle."""
    level = _levels(order, deps)
    if len(level) < len(order):
        raise ValueError("the dependency graph has a cycle")
    grouped: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for task in order:
        grouped[level[task]].append(task)
    return tuple(tuple(group) for group in grouped)


def cycles(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Node-disjoint cycles that block layering, each as ``[a, b, c, a]`` (a depends on b, b on c, c on a),
    rotated to start at its earliest-submitted task; empty when the graph can be layered."""
    level = _levels(order, deps)
    stuck = [task for task in order if task not in level]
    position = {task: i for i, task in enumerate(order)}
    found: list[list[str]] = []
    named: set[str] = set()
    for start in stuck:
        cycle = _walk_to_cycle(start, deps, level, named)
        if cycle:
            named.update(cycle)
            first = min(range(len(cycle)), key=lambda i: position[cycle[i]])
            found.append([*cycle[first:], *cycle[:first], cycle[first]])
    return found


def _levels(order: Sequence[str], deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Kahn's peeling: the layer of every task that is neither on a cycle nor behind one."""
    waiting = {task: len(set(deps[task])) for task in order}
    dependents: dict[str, list[str]] = {task: [] for task in order}
    for task in order:
        for dep in set(deps[task]):
            dependents[dep].append(task)
    level = {task: 0 for task in order if waiting[task] == 0}
    ready = deque(level)
    while ready:
        done = ready.popleft()
        for task in dependents[done]:
            level[task] = max(level.get(task, 0), level[done] + 1)
            waiting[task] -= 1
            if waiting[task] == 0:
                ready.append(task)
    return {task: level[task] for task in order if waiting[task] == 0}


def _walk_to_cycle(
    start: str, deps: Mapping[str, Sequence[str]], level: Mapping[str, int], named: set[str]
) -> list[str]:
    """Follow unlayered dependencies from `start` until a task repeats; every unlayered task has one, so the
    walk ends on a cycle. Empty when it runs into a cycle already named."""
    seen: dict[str, int] = {}
    path: list[str] = []
    task = start
    while task not in seen:
        if task in named:
            return []
        seen[task] = len(path)
        path.append(task)
        task = next(dep for dep in deps[task] if dep not in level)
    return path[seen[task] :]
