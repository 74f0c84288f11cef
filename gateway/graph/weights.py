"""What an edge of the learned graph weighs: its type times how it was learned, with promotion by sightings.

Weight = type weight x source factor, as the design sets them. A new edge is `inferred`; once seen
`PROMOTE_AFTER` times it counts as `observed`. Only edges heavier than `MIN_WEIGHT` enter a `ToolGraph`.
"""

from __future__ import annotations

from dataclasses import dataclass

EDGE_TYPE_WEIGHT: dict[str, float] = {"dependency": 1.0, "contains": 0.8, "provides": 0.7, "sequence": 0.5}
SOURCE_FACTOR: dict[str, float] = {"observed": 1.0, "inferred": 0.7, "template": 0.5}
MIN_WEIGHT = 0.3
PROMOTE_AFTER = 3


def edge_weight(edge_type: str, source: str) -> float:
    """Type weight x source factor; ValueError names the unknown type or source."""
    if edge_type not in EDGE_TYPE_WEIGHT:
        raise ValueError(f"unknown edge type {edge_type!r}; expected one of {sorted(EDGE_TYPE_WEIGHT)}")
    if source not in SOURCE_FACTOR:
        raise ValueError(f"unknown edge source {source!r}; expected one of {sorted(SOURCE_FACTOR)}")
    return EDGE_TYPE_WEIGHT[edge_type] * SOURCE_FACTOR[source]


def promoted(origin: str, count: int) -> str:
    """`observed` for an `inferred` edge seen at least `PROMOTE_AFTER` times; any other origin as given.

    Template edges are not promoted here: their count is not a count of sightings.
    """
    return "observed" if origin == "inferred" and count >= PROMOTE_AFTER else origin


@dataclass(frozen=True)
class Edge:
    """A directed edge `source -> target` as stored: its type, how it was learned, and how often it was seen."""

    source: str
    target: str
    edge_type: str
    origin: str
    count: int = 1

    def __post_init__(self) -> None:
        edge_weight(self.edge_type, self.origin)

    @property
    def weight(self) -> float:
        """The edge's weight, after promotion of an `inferred` edge seen often enough."""
        return edge_weight(self.edge_type, promoted(self.origin, self.count))

    @property
    def enters_graph(self) -> bool:
        """Heavier than `MIN_WEIGHT`, and not a self-loop (which says nothing about order or ranking)."""
        return self.source != self.target and self.weight > MIN_WEIGHT
